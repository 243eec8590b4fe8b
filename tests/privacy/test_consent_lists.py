"""Consent on a list destination: only consenting members are uploaded; withdrawing consent removes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.activation_flow.conftest import wait_for
from tests.delivery.conftest import Receiver, receiver  # noqa: F401  (fixture)
from tests.ingest.conftest import LiveApp, start_live_app

ADMIN = {"Authorization": "Bearer admin-token"}


def config(url: str) -> str:
    return f"""\
space_id: spa_test
sources: [{{id: src_web, write_key: web-key}}]
profile_api: {{access_secret: profile-secret}}
management_api: {{token: admin-token}}
audiences:
  - key: buyers
    condition: {{performed: {{event: Order Completed, at_least: 1}}}}
destinations:
  - id: dst_list
    kind: webhook
    consent_categories: [Advertising, Analytics]
    settings: {{url: "{url}/list"}}
    schedule: {{every: 1h}}
    connections: [{{computation: buyers}}]
"""


@pytest.fixture
def live(sqlite_url: str, receiver: Receiver) -> Iterator[LiveApp]:  # noqa: F811
    app = start_live_app(sqlite_url, config(receiver.url))
    yield app
    app.close()


def track(live: LiveApp, user: str, consent: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"userId": user, "event": "Order Completed"}
    if consent is not None:
        body["context"] = {"consent": {"categoryPreferences": consent}}
    assert httpx.post(live.base_url + "/v1/track", json=body, auth=("web-key", "")).json() == {"success": True}


def ops(receiver: Receiver) -> list[tuple[str, list[str]]]:  # noqa: F811
    return [(m["action"], sorted(x["value"] for x in m["members"])) for m in receiver.messages()]


def sync(live: LiveApp) -> None:
    assert httpx.post(live.base_url + "/api/v1/destinations/dst_list/sync", headers=ADMIN).status_code == 200


def test_only_consenting_members_are_uploaded_and_withdrawal_removes(live: LiveApp, receiver: Receiver) -> None:  # noqa: F811
    track(live, "ada", {"Advertising": True, "Analytics": True})
    track(live, "bob", {"Advertising": True, "Analytics": False})
    track(live, "cy", None)
    members = live.base_url + "/api/v1/computations/buyers"
    assert wait_for(lambda: httpx.get(members, headers=ADMIN).json()["size"] == 3)
    sync(live)
    assert wait_for(lambda: ops(receiver) == [("create", []), ("add", ["ada"])])
    track(live, "ada", {"Advertising": False, "Analytics": True})

    def removed() -> bool:
        sync(live)
        return ops(receiver)[2:] == [("remove", ["ada"])]

    assert wait_for(removed, 30)
