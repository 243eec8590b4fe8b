"""Responsys Batch: asynchronous merges polled to completion; pending rows retried, MERGEFAILED alone."""

from __future__ import annotations

import json

from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.fakes.responsys import LIST, PASSWORD, USER, responsys_fake
from tests.destinations.harness import Harness
from traitsync.destinations.auth import Token
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors._responsys import ResponsysSettings
from traitsync.destinations.vendors.responsys_batch import DESTINATION as BATCH
from traitsync.destinations.vendors.responsys_batch import MAX_POLLS

HOST = "https://njp1q7u-api.responsys.ocs.oraclecloud.com"
SETTINGS = {"username": USER, "userPassword": PASSWORD, "baseUrl": HOST, "profileListName": LIST}
PROCESSING = {"response": {"errorCode": "PROCESSING_REQUEST"}, "requestId": "r1", "status": "UNKNOWN"}
DONE = {"response": {"recordData": {"fieldNames": ["RIID_"], "records": [["7"]]}}, "requestId": "r1",
        "status": "SUCCESS"}


def respond(*bodies: object) -> object:
    answers = iter([Response(200, body=json.dumps(b).encode()) for b in bodies])
    return lambda _r: next(answers)


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("responsys_batch") is BATCH and default_rate(BATCH) == 3


def test_golden_async_merge_then_polls_until_done() -> None:
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    outcomes, sent = run_exchange(BATCH.start([item(BATCH, message)], ResponsysSettings(**SETTINGS), Token("t")),
                                  respond({"requestId": "r1"}, PROCESSING, DONE))  # type: ignore[arg-type]
    assert outcomes == [Outcome.ok({"riid": "7"})]
    assert [(r.purpose, r.method, r.url) for r in sent] == [
        ("send", "POST", f"{HOST}/rest/asyncApi/v1.3/lists/{LIST}/members"),
        ("poll", "GET", f"{HOST}/rest/asyncApi/v1.3/requests/r1"),
        ("poll", "GET", f"{HOST}/rest/asyncApi/v1.3/requests/r1")]
    assert json.loads(sent[0].body)["recordData"]["records"] == [["a@x.io", "u1", "true"]]


def test_still_processing_after_the_polls_is_retried_later() -> None:
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    outcomes, sent = run_exchange(BATCH.start([item(BATCH, message)], ResponsysSettings(**SETTINGS), Token("t")),
                                  respond({"requestId": "r1"}, *[PROCESSING] * MAX_POLLS))  # type: ignore[arg-type]
    assert outcomes[0].kind == "retry" and outcomes[0].code == "RESPONSYS_PENDING"
    assert len(sent) == 1 + MAX_POLLS


def test_a_purged_result_is_merged_again() -> None:
    purged = {"response": {"errorCode": "RESPONSE_PURGED"}, "requestId": "r1", "status": "UNKNOWN"}
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    outcomes, _ = run_exchange(BATCH.start([item(BATCH, message)], ResponsysSettings(**SETTINGS), Token("t")),
                               respond({"requestId": "r1"}, purged))  # type: ignore[arg-type]
    assert outcomes[0].kind == "retry" and outcomes[0].code == "RESPONSE_PURGED"


def test_entry_exit_and_trait_delivered_through_the_async_api(harness: Harness) -> None:
    with responsys_fake(processing_polls=2) as fake:
        worker = harness.worker("responsys_batch", {**SETTINGS, "baseUrl": fake.url})
        result = harness.run(worker, [
            audience_identify("m1", "vip_buyers", True, email="a@x.io"),
            audience_track("m2", "vip_buyers", False, email="b@x.io", user_id="u2"),
            audience_identify("m3", "vip_buyers", True, email="broken@", user_id="u3"),
            trait_identify("m4", "ltv_90d", 412.5, email="a@x.io", user_id="u4")])
        assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "dead", "m4": "delivered"}
        assert result.codes["m3"] == "MERGEFAILED"
        assert fake.fake.violations == [] and fake.issued == 1
        assert fake.members["a@x.io"]["LTV_90D"] == "412.5" and fake.members["b@x.io"]["VIP_BUYERS"] == "false"
        polls = fake.fake.on("GET", "/rest/asyncApi/v1.3/requests/")
        assert len(polls) == 3 * len(fake.requests)  # two "processing" answers, then the result, per merge
        assert all(p.header("Authorization") == "rsys-token-1" for p in polls)
        assert PASSWORD not in json.dumps(result.attempts)
