"""The server keeps its OpenAPI document: schemathesis fuzzes every operation over a real socket.

Each operation gets at most ``EXAMPLES`` generated requests, sent with the credential its
security scheme names. Half of the generated path parameters are swapped for ones that exist
(the space, a profile, a source, a destination, a computation), so the fuzzing reaches past
400 and 404 into the handlers. Checks: no 5xx, no status the document does not list, every
body and content type as documented.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.activation_flow.conftest import wait_for
from tests.ingest.conftest import LiveApp, start_live_app
from tests.test_server_auth import CONFIG

EXAMPLES = int(os.environ.get("TRAITSYNC_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_KNOWN = {"space": "spa_test", "collection": "users", "identifier": "user_id:u1", "source_id": "src_web",
          "destination_id": "dst_hook", "key": "buyers"}


def _basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


_CREDENTIALS = {"writeKey": _basic("web-key"), "accessSecret": _basic("profile-secret"),
                "managementToken": "Bearer admin-token"}


@pytest.fixture(scope="module")
def live_contract(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    path: Path = tmp_path_factory.mktemp("contract") / "traitsync.db"
    live = start_live_app(f"sqlite:///{path}", CONFIG)
    batch = [{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com", "plan": "pro"}},
             {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 5}},
             {"type": "identify", "userId": "u1", "anonymousId": "a1"}]
    response = httpx.post(live.base_url + "/v1/batch", json={"batch": batch}, auth=("web-key", ""))
    assert response.json() == {"success": True, "accepted": 3, "duplicates": 0}
    traits = live.base_url + "/v1/spaces/spa_test/collections/users/profiles/user_id:u1/traits"
    wait_for(lambda: httpx.get(traits, auth=("profile-secret", "")).status_code == 200)
    yield live
    live.close()


def _known(path_parameters: dict[str, Any]) -> dict[str, Any]:
    return {k: _KNOWN.get(k, v) for k, v in path_parameters.items()}


def _fuzz(operation: Any, failures: list[str]) -> int:
    """Send up to ``EXAMPLES`` generated requests to one operation; returns how many were sent."""
    security = operation.definition.raw.get("security") or [{}]
    headers = {"Authorization": _CREDENTIALS[name] for name in security[0]}  # noqa: B035 (one scheme each)
    sent = 0

    @given(case=operation.as_strategy(), known=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: Any, known: bool) -> None:
        nonlocal sent
        if known and case.path_parameters:
            case.path_parameters = _known(case.path_parameters)
        sent += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except AssertionError as failure:  # schemathesis' failures are AssertionErrors
            failures.append(f"{operation.label}: {' '.join(str(failure).split())[:300]}")
            raise

    try:
        run()
    except AssertionError:
        pass  # recorded above; keep fuzzing the other operations
    return sent


def test_every_operation_keeps_the_document(live_contract: LiveApp) -> None:
    document = httpx.get(live_contract.base_url + "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=live_contract.base_url)
    failures: list[str] = []
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        sent[operation.label] = _fuzz(operation, failures)
    print(f"schemathesis: {sum(sent.values())} requests over {len(sent)} operations")
    assert failures == []
    assert len(sent) == sum(len(item) for item in document["paths"].values())
    assert all(n >= 1 for n in sent.values()), sent


def test_document_names_a_scheme_for_every_operation(live_contract: LiveApp) -> None:
    document = httpx.get(live_contract.base_url + "/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert {name: (s["type"], s["scheme"]) for name, s in schemes.items()} == {
        "writeKey": ("http", "basic"), "accessSecret": ("http", "basic"), "managementToken": ("http", "bearer")}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = [name for requirement in operation["security"] for name in requirement]
            assert all(name in schemes for name in names), (method, path, names)
            if path == "/healthz":
                assert names == []
            else:
                assert len(names) == 1, (method, path)
                assert "401" in operation["responses"], (method, path)
            assert "422" not in operation["responses"], (method, path)
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_empty_batch_is_one_refusal(live_contract: LiveApp) -> None:
    response = httpx.post(live_contract.base_url + "/v1/batch", json={"batch": []}, auth=("web-key", ""))
    assert response.status_code == 200
    assert response.json() == {"success": False, "accepted": 0, "duplicates": 0, "code": "empty_batch",
                               "message": "batch is empty", "rejected": []}


def test_a_bad_query_parameter_is_400_in_the_error_shape(live_contract: LiveApp) -> None:
    response = httpx.get(live_contract.base_url + "/api/v1/sources/src_web/debugger?limit=many",
                         headers={"Authorization": "Bearer admin-token"})
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_request",
                               "message": "limit: Input should be a valid integer, unable to parse string as "
                                          "an integer"}
    missing = httpx.get(live_contract.base_url + "/api/v1/nothing", headers={"Authorization": "Bearer admin-token"})
    assert (missing.status_code, missing.json()) == (404, {"code": "not_found", "message": "Not Found"})


def test_inputs_the_fuzzing_found_are_answered(live_contract: LiveApp) -> None:
    """Two requests that used to answer 500: a batch item whose type is a list, a digit-like since."""
    response = httpx.post(live_contract.base_url + "/v1/import", json={"batch": [{"type": []}]}, auth=("web-key", ""))
    assert response.status_code == 200
    assert response.json() == {
        "success": False, "accepted": 0, "duplicates": 0, "code": "multi_user_error",
        "message": "1 of 1 messages were refused",
        "rejected": [{"index": 0, "code": "bad_request",
                      "message": "type must be one of alias, group, identify, page, screen, track"}]}
    overview = httpx.get(live_contract.base_url + "/api/v1/destinations/dst_hook/delivery-overview?since=%C2%B3",
                         headers={"Authorization": "Bearer admin-token"})
    assert (overview.status_code, overview.json()["code"]) == (400, "bad_time")


def test_an_outbox_id_past_64_bits_is_a_400_not_a_500(live_contract: LiveApp) -> None:
    """Fuzzing sent a 30-digit outbox id to dead-letter replay; the driver cannot bind it."""
    admin = {"Authorization": "Bearer admin-token"}
    replay = httpx.post(live_contract.base_url + "/api/v1/destinations/dst_hook/dead-letters/replay",
                        json={"outbox_ids": [2368, 215421741722343264935592591360]}, headers=admin)
    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_request"
    page = httpx.get(live_contract.base_url + "/api/v1/destinations/dst_hook/dead-letters",
                     params={"before": 2**63}, headers=admin)
    assert page.status_code == 400
    fine = httpx.post(live_contract.base_url + "/api/v1/destinations/dst_hook/dead-letters/replay",
                      json={"outbox_ids": [2368]}, headers=admin)
    assert fine.json() == {"destination_id": "dst_hook", "replayed": 0}
