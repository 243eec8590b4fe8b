"""Every API needs its credential: each route refuses a request without it, and roles are enforced.

The OpenAPI document is walked operation by operation; the routes the app serves outside it
(the interactive docs, the console's static files) are listed and must be public on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Route

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


#: Every route served without a credential, on purpose: the health probe, the API's own
#: description (it holds no data and no secret) and the console's static files (the console
#: then asks for a management token and sends it on every call). A new route that is neither
#: here nor refusing without its credential fails the test below.
PUBLIC = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/", "/console/{path}"}
SECRETS = ("web-key", "profile-secret", "admin-token", "reader-token")


def served_routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, method) of every route the app serves, in the OpenAPI document or not.

    FastAPI 0.16x keeps an included router as one entry (``original_router`` under a prefix).
    Paths are written as the document writes them (``{identifier:path}`` -> ``{identifier}``).
    """
    for route in routes:
        if hasattr(route, "original_router"):
            yield from served_routes(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + route.path), method
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")


def test_routes_outside_the_document_are_public_on_purpose_and_hold_no_secret(app: LiveApp) -> None:
    spec = httpx.get(app.base_url + "/openapi.json").json()
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    served = set(served_routes(app.server.config.app.routes))
    assert documented <= served
    hidden = {path for path, _ in served - documented}
    assert hidden == PUBLIC - {"/healthz"}, hidden
    for path in sorted(PUBLIC):
        url = app.base_url + path.replace("{path}", "missing.js")
        response = httpx.get(url)
        assert response.status_code in (200, 404, 503), (path, response.status_code)  # 404/503: no console built
        assert not any(secret in response.text for secret in SECRETS), path
