"""Responsys (synchronous merges): login token, raw Authorization header, per-row MERGEFAILED."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.fakes.responsys import LIST, PASSWORD, PET, USER, ResponsysFake, responsys_fake, rsys_error
from tests.destinations.harness import Harness
from traitsync.destinations.auth import Token
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors._responsys import ResponsysSettings
from traitsync.destinations.vendors.responsys import DESTINATION as RESPONSYS

HOST = "https://njp1q7u-api.responsys.ocs.oraclecloud.com"
SETTINGS = {"username": USER, "userPassword": PASSWORD, "baseUrl": HOST, "profileListName": LIST}
TOKEN = Token("tok", extra={"endPoint": "https://njp1q7u-api.responsys.ocs.oraclecloud.com"})


@pytest.fixture
def fake() -> Iterator[ResponsysFake]:
    with responsys_fake() as running:
        yield running


def settings(**over: object) -> ResponsysSettings:
    return ResponsysSettings.model_validate({**SETTINGS, **over})


def merged(records: list[str]) -> Response:
    return Response(200, body=json.dumps({"recordData": {"fieldNames": ["RIID_"],
                                                         "records": [[r] for r in records]}}).encode())


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("responsys") is RESPONSYS and default_rate(RESPONSYS) == 3 and RESPONSYS.max_batch == 200


def test_golden_merge_groups_rows_by_their_columns() -> None:
    items = [item(RESPONSYS, audience_identify("m1", "vip_buyers", True, email="a@x.io")),
             item(RESPONSYS, audience_track("m2", "vip_buyers", False, email="b@x.io", user_id="u2")),
             item(RESPONSYS, trait_identify("m3", "ltv_90d", 412.5, email="c@x.io", user_id="u3"))]
    answers = iter([merged(["11", "12"]), merged(["13"])])
    outcomes, sent = run_exchange(RESPONSYS.start(items, settings(), TOKEN), lambda _r: next(answers))
    assert outcomes == [Outcome.ok({"riid": "11"}), Outcome.ok({"riid": "12"}), Outcome.ok({"riid": "13"})]
    assert [(r.url, r.indices) for r in sent] == [(f"{HOST}/rest/api/v1.3/lists/{LIST}/members", (0, 1)),
                                                  (f"{HOST}/rest/api/v1.3/lists/{LIST}/members", (2,))]
    assert json.loads(sent[0].body) == {
        "recordData": {"fieldNames": ["EMAIL_ADDRESS_", "CUSTOMER_ID_", "VIP_BUYERS"],
                       "records": [["a@x.io", "u1", "true"], ["b@x.io", "u2", "false"]], "mapTemplateName": ""},
        "mergeRule": {"htmlValue": "H", "optinValue": "I", "textValue": "T", "insertOnNoMatch": True,
                      "updateOnMatch": "REPLACE_ALL", "matchColumnName1": "EMAIL_ADDRESS_", "matchOperator": "NONE",
                      "optoutValue": "O", "rejectRecordIfChannelEmpty": "", "defaultPermissionStatus": "OPTOUT"}}
    assert json.loads(sent[1].body)["recordData"]["records"] == [["c@x.io", "u3", "412.5"]]


def test_golden_pet_merge() -> None:
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    _, sent = run_exchange(RESPONSYS.start([item(RESPONSYS, message)], settings(profileExtensionTable=PET), TOKEN),
                           lambda _r: merged(["11"]))
    assert sent[0].url == f"{HOST}/rest/api/v1.3/lists/{LIST}/listExtensions/{PET}/members"
    body = json.loads(sent[0].body)
    assert {k: v for k, v in body.items() if k != "recordData"} == {
        "insertOnNoMatch": True, "updateOnMatch": "REPLACE_ALL", "matchColumnName1": "EMAIL_ADDRESS",
        "matchColumnName2": ""}


def test_rows_without_the_match_column_are_dropped_unsent() -> None:
    message = audience_identify("m1", "vip", True)  # a userId but no email; matching on EMAIL_ADDRESS_
    outcomes, sent = run_exchange(RESPONSYS.start([item(RESPONSYS, message)], settings(), TOKEN),
                                  lambda _r: merged([]))
    assert sent == [] and outcomes[0].code == "MISSING_MATCH_COLUMN"
    ok, sent = run_exchange(RESPONSYS.start([item(RESPONSYS, message)], settings(matchColumnName1="CUSTOMER_ID_"),
                                            TOKEN), lambda _r: merged(["5"]))
    assert ok == [Outcome.ok({"riid": "5"})]
    assert json.loads(sent[0].body)["mergeRule"]["matchColumnName1"] == "CUSTOMER_ID_"


def test_entry_exit_and_trait_arrive_at_the_login_endpoint(harness: Harness, fake: ResponsysFake) -> None:
    worker = harness.worker("responsys", {**SETTINGS, "baseUrl": fake.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="a@x.io"),
        audience_track("m2", "vip_buyers", False, email="b@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="a@x.io", user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == [] and fake.issued == 1
    assert fake.members["a@x.io"] == {"EMAIL_ADDRESS_": "a@x.io", "CUSTOMER_ID_": "u3", "VIP_BUYERS": "true",
                                      "LTV_90D": "412.5"}
    assert fake.members["b@x.io"]["VIP_BUYERS"] == "false"
    merges = fake.fake.on("POST", f"/rest/api/v1.3/lists/{LIST}/members")
    assert all(s.header("Authorization") == "rsys-token-1" for s in merges)  # raw token, no scheme
    log = json.dumps(result.attempts)
    assert PASSWORD not in log and "rsys-token" not in log


def test_a_mergefailed_row_fails_alone(harness: Harness, fake: ResponsysFake) -> None:
    worker = harness.worker("responsys", {**SETTINGS, "baseUrl": fake.url})
    result = harness.run(worker, [audience_identify(f"m{i}", "vip_buyers", True, user_id=f"u{i}",
                                                    email="broken@" if i == 1 else f"u{i}@x.io") for i in range(3)])
    assert result.states == {"m0": "delivered", "m1": "dead", "m2": "delivered"}
    assert result.codes["m1"] == "MERGEFAILED"
    assert len(fake.fake.on("POST", f"/rest/api/v1.3/lists/{LIST}/members")) == 1


def test_an_expired_token_is_refreshed_once(harness: Harness, fake: ResponsysFake) -> None:
    worker = harness.worker("responsys", {**SETTINGS, "baseUrl": fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("m1", "vip_buyers", True, email="a@x.io")])
    worker.drain(10)
    fake.live = "expired"
    result = harness.run(worker, [audience_identify("m2", "vip_buyers", False, email="a@x.io", user_id="u2")])
    assert result.states == {"m1": "delivered", "m2": "delivered"} and fake.issued == 2
    assert [(m, n, o) for m, n, o, *_ in result.attempts] == [("m1", 1, "ok"), ("m2", 1, "ok")]
    assert fake.members["a@x.io"]["VIP_BUYERS"] == "false"


def test_a_throttle_is_retried_and_nothing_is_lost(harness: Harness, fake: ResponsysFake) -> None:
    worker = harness.worker("responsys", {**SETTINGS, "baseUrl": fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("w", "vip_buyers", True, email="w@x.io", user_id="w")])
    worker.drain(10)
    fake.fake.script = [rsys_error(429, "TOO_MANY_REQUESTS", "Too many requests")]
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", True, email="a@x.io")])
    assert result.states["m1"] == "delivered"
    assert [(n, o) for m, n, o, *_ in result.attempts if m == "m1"] == [(1, "retry"), (2, "ok")]


def test_an_unknown_column_is_dropped_with_its_code(harness: Harness, fake: ResponsysFake) -> None:
    worker = harness.worker("responsys", {**SETTINGS, "baseUrl": fake.url})
    result = harness.run(worker, [audience_identify("m1", "churn_risk", True, email="a@x.io")])
    assert result.codes == {"m1": "INVALID_FIELD_NAME"} and result.states == {"m1": "dead"}


def test_check(fake: ResponsysFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    assert check_destination(DeliveryTarget.simple("d", RESPONSYS, settings(baseUrl=fake.url))).ok
    refused = check_destination(DeliveryTarget.simple("d", RESPONSYS, settings(baseUrl=fake.url,
                                                                             userPassword="wrong-pw-1")))
    assert not refused.ok and "wrong-pw-1" not in refused.verdict + json.dumps(refused.requests)


@pytest.mark.parametrize(("data", "named"), [
    ({**SETTINGS, "baseUrl": "njp1q7u-api.responsys.ocs.oraclecloud.com"}, "baseUrl"),
    ({**SETTINGS, "matchColumnName1": "PHONE"}, "matchColumnName1"),
    ({k: v for k, v in SETTINGS.items() if k != "profileListName"}, "profileListName"),
    ({k: v for k, v in SETTINGS.items() if k != "userPassword"}, "userPassword"),
])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RESPONSYS.parse_settings(data)
    assert named in str(caught.value) and PASSWORD not in str(caught.value)
