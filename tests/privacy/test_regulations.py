"""Regulations end to end over real sockets: delete, suppress, unsuppress, and consent.

A live app (API and workers) on SQLite and PostgreSQL, a webhook receiver standing in for a
destination, and the management API to ask. Nothing of ours is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.activation_flow.conftest import wait_for
from tests.delivery.conftest import Receiver, receiver  # noqa: F401  (fixture)
from tests.ingest.conftest import LiveApp, start_live_app
from traitsync.ingest.suppressions import REFRESH_SECONDS

ADMIN = {"Authorization": "Bearer admin-token"}
READER = {"Authorization": "Bearer reader-token"}


def config(url: str) -> str:
    return f"""\
space_id: spa_test
sources: [{{id: src_web, write_key: web-key}}]
profile_api: {{access_secret: profile-secret}}
management_api:
  token: admin-token
  tokens: [{{name: dashboards, role: read-only, token: reader-token}}]
audiences:
  - key: buyers
    condition: {{performed: {{event: Order Completed, at_least: 1}}}}
destinations:
  - id: dst_hook
    kind: webhook
    settings: {{url: "{url}/hook"}}
    connections: [{{computation: buyers, send: [track]}}]
  - id: dst_consent
    kind: webhook
    consent_categories: [Advertising]
    settings: {{url: "{url}/consent"}}
    connections: [{{computation: buyers, send: [track]}}]
"""


@pytest.fixture
def live(db_url: str, receiver: Receiver) -> Iterator[LiveApp]:  # noqa: F811
    app = start_live_app(db_url, config(receiver.url))
    yield app
    app.close()


def track(live: LiveApp, user: str, consent: dict[str, bool] | None = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"userId": user, "event": "Order Completed", **extra}
    if consent is not None:
        body["context"] = {"consent": {"categoryPreferences": consent}}
    return httpx.post(live.base_url + "/v1/track", json=body, auth=("web-key", ""))


def hook_events(receiver: Receiver, path: str) -> list[tuple[str, str]]:  # noqa: F811
    return [(m["userId"], m["event"]) for r in receiver.requests if r.path == path
            for m in (r.json() if isinstance(r.json(), list) else [r.json()])]


def regulate(live: LiveApp, kind: str, subject: str, headers: dict[str, str] = ADMIN) -> httpx.Response:
    return httpx.post(live.base_url + "/api/v1/regulations", json={"regulation_type": kind, "subject": subject},
                      headers=headers)


def rows(live: LiveApp, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = live.runtime.db.connect()
    try:
        out = conn.fetchall(sql, params)
        conn.commit()
        return out
    finally:
        conn.close()


def count_for(live: LiveApp, pid: str) -> dict[str, int]:
    tables = {"profile_events": "profile_id", "profile_external_ids": "profile_id", "profile_traits": "profile_id",
              "computed_values": "profile_id", "computation_results": "profile_id", "profiles": "profile_id",
              "delivery_outbox": "order_key", "activation_snapshots": "profile_id"}
    return {t: int(rows(live, f"SELECT COUNT(*) FROM {t} WHERE {c} = ?", (pid,))[0][0]) for t, c in tables.items()}


def test_delete_sends_exits_then_erases_everything(live: LiveApp, receiver: Receiver) -> None:  # noqa: F811
    assert track(live, "ada", {"Advertising": True}, traits={"email": "ada@example.com"}).json() == {"success": True}
    assert track(live, "bob").json() == {"success": True}
    assert wait_for(lambda: sorted(hook_events(receiver, "/hook")) == [("ada", "Audience Entered"),
                                                                       ("bob", "Audience Entered")])
    # Consent: ada allowed Advertising; bob never said, so that destination gets nothing about him.
    assert wait_for(lambda: hook_events(receiver, "/consent") == [("ada", "Audience Entered")])
    [(pid,)] = rows(live, "SELECT profile_id FROM profile_external_ids WHERE id_type = 'user_id' AND value = 'ada'")
    events_before = int(rows(live, "SELECT COUNT(*) FROM events")[0][0])

    response = regulate(live, "delete", "user_id:ada")
    assert response.status_code == 201
    created = response.json()
    assert {k: created[k] for k in ("regulation_type", "subject_type", "subject", "requested_by", "status")} == {
        "regulation_type": "delete", "subject_type": "user_id", "subject": "ada",
        "requested_by": "token:default", "status": "pending"}

    assert wait_for(lambda: ("ada", "Audience Exited") in hook_events(receiver, "/hook"))
    assert wait_for(lambda: ("ada", "Audience Exited") in hook_events(receiver, "/consent"))
    listed = httpx.get(live.base_url + "/api/v1/regulations", headers=READER).json()["regulations"]
    assert wait_for(lambda: httpx.get(live.base_url + "/api/v1/regulations", headers=READER)
                    .json()["regulations"][0]["status"] == "done")
    listed = httpx.get(live.base_url + "/api/v1/regulations", headers=READER).json()["regulations"]
    assert len(listed) == 1
    assert listed[0]["subject"] is None  # the identifier is not kept once the deletion is done
    assert listed[0]["detail"] == ("1 profile(s); 0 unsent message(s) dropped; 1 audience exit(s) sent; "
                                   "1 event(s) deleted")
    assert count_for(live, pid) == dict.fromkeys(count_for(live, pid), 0)
    assert int(rows(live, "SELECT COUNT(*) FROM events")[0][0]) == events_before - 1
    profile = live.base_url + "/v1/spaces/spa_test/collections/users/profiles/user_id:ada/traits"
    assert httpx.get(profile, auth=("profile-secret", "")).status_code == 404
    # bob is untouched, and ada may come back as a new person (delete does not suppress).
    assert httpx.get(profile.replace("ada", "bob"), auth=("profile-secret", "")).status_code == 200
    assert track(live, "ada").json() == {"success": True}


def test_suppress_refuses_later_events_and_unsuppress_lets_them_in(live: LiveApp) -> None:
    assert regulate(live, "suppress", "email:eve@example.com", READER).status_code == 403
    response = regulate(live, "suppress", "email:eve@example.com")
    assert (response.status_code, response.json()["status"]) == (201, "done")
    suppressed = {"success": False, "code": "suppressed",
                  "message": "an identifier of this message is suppressed by a privacy regulation"}
    time.sleep(2 * REFRESH_SECONDS)  # every API process re-reads the list this often
    assert track(live, "eve", context={"traits": {"email": "eve@example.com"}}, messageId="try").json() == suppressed
    batch = {"batch": [{"type": "identify", "userId": "x", "traits": {"email": "eve@example.com"}},
                       {"type": "track", "userId": "y", "event": "Order Completed"}]}
    answer = httpx.post(live.base_url + "/v1/batch", json=batch, auth=("web-key", "")).json()
    assert answer == {"success": False, "accepted": 1, "duplicates": 0, "code": "multi_user_error",
                      "message": "1 of 2 messages were refused; the others were stored",
                      "rejected": [{"index": 0, "code": "suppressed", "message": suppressed["message"]}]}
    debugger = httpx.get(live.base_url + "/api/v1/sources/src_web/debugger", headers=READER).json()
    codes = [(r["code"], r["body"]) for r in debugger["rejections"]]
    assert codes[:2] == [("suppressed", None), ("suppressed", None)]  # the person's data is not kept
    assert "eve@example.com" not in httpx.get(live.base_url + "/api/v1/sources/src_web/debugger",
                                              headers=READER).text
    assert regulate(live, "unsuppress", "email:eve@example.com").status_code == 201
    assert wait_for(lambda: track(live, "eve", context={"traits": {"email": "eve@example.com"}}).json()
                    == {"success": True})
    kinds = [(r["regulation_type"], r["requested_by"]) for r in
             httpx.get(live.base_url + "/api/v1/regulations", headers=READER).json()["regulations"]]
    assert kinds == [("unsuppress", "token:default"), ("suppress", "token:default")]


def test_a_bad_subject_is_one_line(live: LiveApp) -> None:
    response = regulate(live, "delete", "ada")
    assert (response.status_code, response.json()) == (400, {
        "code": "bad_subject", "message": "'ada' is not TYPE:VALUE (for example email:ada@example.com or user_id:42)"})
