"""The console's JSON endpoints over a real socket: guarded by the token, documented, paged."""

from __future__ import annotations

import httpx
import pytest

from tests.console.conftest import Console

pytestmark = pytest.mark.slow

NEW_ENDPOINTS = [
    "/api/v1/computations/{key}/definition", "/api/v1/computations/{key}/size-history",
    "/api/v1/computations/{key}/members", "/api/v1/computations/{key}/identifiers", "/api/v1/profiles",
    "/api/v1/profiles/{profile_id}", "/api/v1/profiles/{profile_id}/events", "/api/v1/identity/violations",
    "/api/v1/identity/explain", "/api/v1/destinations/{destination_id}/timeline",
    "/api/v1/destinations/{destination_id}/dead-letters",
    "/api/v1/destinations/{destination_id}/dead-letters/replay",
]


def test_every_console_endpoint_is_documented_and_refuses_a_wrong_token(console: Console) -> None:
    paths = httpx.get(f"{console.base}/openapi.json").json()["paths"]
    assert set(NEW_ENDPOINTS) <= set(paths)
    for path in NEW_ENDPOINTS:
        url = path.format(key="order_completed_last_30days", profile_id="x", destination_id="dst_events")
        method = "post" if url.endswith("/replay") else "get"
        res = httpx.request(method, f"{console.base}{url}", headers={"Authorization": "Bearer wrong"})
        assert res.status_code == 401, url


def test_the_page_is_served_without_a_token_and_its_assets_from_the_package(console: Console) -> None:
    page = httpx.get(f"{console.base}/")
    assert page.status_code == 200 and '<div id="app">' in page.text
    asset = page.text.split('src="')[1].split('"')[0]
    assert asset.startswith("/console/assets/")
    assert httpx.get(f"{console.base}{asset}").status_code == 200
    assert httpx.get(f"{console.base}/console/%2e%2e/%2e%2e/__init__.py").status_code == 404


def test_size_history_ends_at_the_current_size(console: Console) -> None:
    size = console.api("/computations/order_completed_last_30days?sample=0")["size"]
    points = console.api("/computations/order_completed_last_30days/size-history", buckets=10)["points"]
    assert len(points) == 10
    assert points[-1]["size"] == size and points[0]["size"] == 0


def test_members_are_paged_on_the_server(console: Console) -> None:
    size = console.api("/computations/last_category_viewed?sample=0")["size"]
    seen: list[str] = []
    after = None
    while True:
        page = console.api("/computations/last_category_viewed/members", limit=7,
                           **({"after": after} if after else {}))
        assert len(page["members"]) <= 7
        seen += [m["profile_id"] for m in page["members"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == size
    assert all(m["email"].endswith("@example.com") for m in page["members"])


def test_profile_search_finds_by_prefix_and_by_typed_identifier(console: Console) -> None:
    found = console.api("/profiles", q="user_01")["profiles"]
    assert {m["value"] for m in found} == {f"user_01{n}" for n in range(10)}
    typed = console.api("/profiles", q="anonymous_id:anon-007")["profiles"]
    assert [(m["id_type"], m["value"]) for m in typed] == [("anonymous_id", "anon-007")]
    assert console.api("/profiles", q="nobody-has-this")["profiles"] == []


def test_the_delivery_chart_counts_attempts_by_outcome(console: Console) -> None:
    points = console.api("/destinations/dst_events/timeline")["points"]
    assert sum(p["delivered"] for p in points) > 0
    assert sum(p["dead"] for p in points) >= 1
