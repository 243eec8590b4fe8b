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
management_api:
  token: admin-token
  tokens: [{name: dashboards, role: read-only, token: reader-token}]
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
        body = {"regulation_type": "suppress", "subject": "user_id:nobody"} if path.endswith("/regulations") else None
        reader = httpx.request(method.upper(), url, headers={"Authorization": "Bearer reader-token"}, json=body)
        if method == "get":
            assert reader.status_code not in (401, 403), (method, path, reader.status_code, reader.text)
        else:  # a read-only token may not change anything
            assert (reader.status_code, reader.json()["code"]) == (403, "forbidden"), (method, path)
        allowed = httpx.request(method.upper(), url, headers={"Authorization": "Bearer admin-token"}, json=body)
        # Admitted: anything but 401/403 (syncing an event destination is a 409, by design).
        assert allowed.status_code not in (401, 403), (method, path, allowed.status_code, allowed.text)
        assert allowed.status_code < 500, (method, path, allowed.status_code, allowed.text)


def test_every_route_but_health_refuses_a_request_without_its_credential(app: LiveApp) -> None:
    spec = httpx.get(app.base_url + "/openapi.json").json()
    walked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            url = app.base_url + path.replace("{space}", "spa_test").replace("{collection}", "users") \
                .replace("{identifier}", "user_id:u1").replace("{source_id}", "src_web") \
                .replace("{key}", "buyers").replace("{destination_id}", "dst_hook")
            response = httpx.request(method.upper(), url, json={"userId": "u1", "event": "E", "batch": []})
            if path == "/healthz":
                assert operation["security"] == [] and response.status_code == 200
                continue
            assert response.status_code == 401, (method, path, response.status_code)
            walked += 1
    assert walked == sum(len(item) for item in spec["paths"].values()) - 1


def test_profile_api_needs_its_secret_and_metrics_include_delivery(app: LiveApp) -> None:
    url = app.base_url + "/v1/spaces/spa_test/collections/users/profiles/user_id:u1/traits"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("admin-token", "")).status_code == 401
    assert httpx.get(url, auth=("profile-secret", "")).status_code == 404
    assert httpx.get(app.base_url + "/metrics").status_code == 401
    text = httpx.get(app.base_url + "/metrics", headers={"Authorization": "Bearer admin-token"}).text
    assert 'traitsync_delivery_messages{destination="dst_hook",state="dead"} 0.0' in text
