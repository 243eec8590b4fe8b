"""Every API needs its credential: each management route refuses a request without the token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.ingest.conftest import LiveApp, start_live_app

CONFIG = """\
space_id: spa_test
sources: [{id: src_web, write_key: web-key}]
profile_api: {access_secret: profile-secret}
management_api: {token: admin-token}
audiences:
  - key: buyers
    condition: {performed: {event: Order Completed, at_least: 1}}
destinations:
  - id: dst_hook
    kind: webhook
    settings: {url: "http://127.0.0.1:9/hook"}
    connections: [{computation: buyers, send: [track]}]
"""


@pytest.fixture
def app(sqlite_url: str) -> Iterator[LiveApp]:
    live = start_live_app(sqlite_url, CONFIG)
    yield live
    live.close()


def test_every_management_route_needs_the_token(app: LiveApp) -> None:
    spec = httpx.get(app.base_url + "/openapi.json").json()
    management = [(path, method) for path, item in spec["paths"].items() if path.startswith("/api/")
                  for method in item]
    assert ("/api/v1/computations", "get") in management
    assert ("/api/v1/destinations", "get") in management
    for path, method in management:
        url = app.base_url + path.replace("{source_id}", "src_web").replace("{key}", "buyers") \
            .replace("{destination_id}", "dst_hook")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer web-key"}):
            response = httpx.request(method.upper(), url, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.status_code)
        allowed = httpx.request(method.upper(), url, headers={"Authorization": "Bearer admin-token"})
        # Admitted: anything but 401/403 (syncing an event destination is a 409, by design).
        assert allowed.status_code not in (401, 403), (method, path, allowed.status_code, allowed.text)
        assert allowed.status_code < 500, (method, path, allowed.status_code, allowed.text)


def test_profile_api_needs_its_secret_and_metrics_include_delivery(app: LiveApp) -> None:
    url = app.base_url + "/v1/spaces/spa_test/collections/users/profiles/user_id:u1/traits"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("admin-token", "")).status_code == 401
    assert httpx.get(url, auth=("profile-secret", "")).status_code == 404
    text = httpx.get(app.base_url + "/metrics").text
    assert 'traitsync_delivery_messages{destination="dst_hook",state="dead"} 0.0' in text
