"""Marketo: lead upsert by email, custom activities, 601/602 refresh, 606 throttle, skipped records."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import (
    audience_identify,
    audience_track,
    item,
    trait_identify,
    trait_track,
)
from tests.destinations.fakes.marketo import CLIENT_ID, CLIENT_SECRET, MarketoFake, error, marketo_fake
from tests.destinations.harness import Harness
from traitsync.delivery.backoff import Backoff
from traitsync.destinations.auth import Token
from traitsync.destinations.base import Outcome, Request, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.marketo import DESTINATION as MARKETO
from traitsync.destinations.vendors.marketo import MarketoSettings, token_expired

SETTINGS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "api_endpoint": "https://123-ABC-456.mktorest.com"}
#: Honours Retry-After-like waits only up to 0.2 s, so a 606 (20 s) test stays fast.
SHORT = Backoff(base=0.01, cap=0.05, max_attempts=5, give_up_after=0.2, jitter=False)


@pytest.fixture
def fake() -> Iterator[MarketoFake]:
    with marketo_fake() as running:
        yield running


def settings(**over: object) -> MarketoSettings:
    return MarketoSettings.model_validate({**SETTINGS, **over})


def ok_upsert(*ids: int) -> Response:
    body = {"requestId": "r", "success": True, "result": [{"seq": i, "id": v, "status": "updated"}
                                                            for i, v in enumerate(ids)]}
    return Response(200, body=json.dumps(body).encode())


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("marketo") is MARKETO
    assert default_rate(MARKETO) == 5 and MARKETO.max_batch == 300


def test_golden_identify_bodies_for_entry_exit_and_trait() -> None:
    items = [item(MARKETO, audience_identify("m1", "vip_buyers", True, email="a@x.io")),
             item(MARKETO, audience_identify("m2", "vip_buyers", False, email="b@x.io", user_id="u2")),
             item(MARKETO, trait_identify("m3", "ltv_90d", 412.5, email="c@x.io", user_id="u3"))]
    outcomes, sent = run_exchange(MARKETO.start(items, settings(), Token("t")), lambda _r: ok_upsert(1, 2, 3))
    assert outcomes == [Outcome.ok({"lead_id": 1}), Outcome.ok({"lead_id": 2}), Outcome.ok({"lead_id": 3})]
    assert [(r.method, r.url, r.indices) for r in sent] == [
        ("POST", "https://123-ABC-456.mktorest.com/rest/v1/leads.json", (0, 1, 2))]
    assert json.loads(sent[0].body) == {"action": "createOrUpdate", "lookupField": "email", "input": [
        {"email": "a@x.io", "vip_buyers": True}, {"email": "b@x.io", "vip_buyers": False},
        {"email": "c@x.io", "ltv_90d": 412.5}]}


def test_golden_track_becomes_a_custom_activity_on_the_upserted_lead() -> None:
    added = b'{"success":true,"result":[{"seq":0,"id":5,"status":"added"}]}'
    answers = iter([ok_upsert(77), Response(200, body=added)])
    message = audience_track("m1", "vip_buyers", False, email="a@x.io")
    outcomes, sent = run_exchange(MARKETO.start([item(MARKETO, message)], settings(activity_type_id=100001),
                                                Token("t")), lambda _r: next(answers))
    assert outcomes == [Outcome.ok()]
    assert [(r.purpose, r.url.rsplit("/", 1)[-1]) for r in sent] == [("lookup", "leads.json"),
                                                                     ("send", "external.json")]
    assert json.loads(sent[0].body)["input"] == [{"email": "a@x.io"}]
    assert json.loads(sent[1].body) == {"input": [{
        "leadId": 77, "activityDate": "2026-11-30T12:00:00Z", "activityTypeId": 100001,
        "primaryAttributeValue": "vip_buyers",
        "attributes": [{"name": "event", "value": "Audience Exited"}, {"name": "value", "value": False}]}]}


def test_golden_track_without_an_activity_type_updates_the_lead_field() -> None:
    message = trait_track("m1", "ltv_90d", 12, email="a@x.io")
    _, sent = run_exchange(MARKETO.start([item(MARKETO, message)], settings(), Token("t")), lambda _r: ok_upsert(1))
    assert json.loads(sent[0].body)["input"] == [{"email": "a@x.io", "ltv_90d": 12}]


def test_whole_request_codes_and_skipped_records_are_classified() -> None:
    def answer(code: str) -> list[Outcome]:
        body = {"success": False, "errors": [{"code": code, "message": "m"}]}
        return run_exchange(MARKETO.start([item(MARKETO, audience_identify("m", "k", True, email="a@x.io"))],
                                          settings(), Token("t")),
                            lambda _r: Response(200, body=json.dumps(body).encode()))[0]
    assert answer("606") == [Outcome.retry(20.0, "606", "m")]
    assert answer("607")[0].kind == "retry" and answer("615")[0].kind == "retry"
    assert answer("601") == [Outcome.auth("601", "m")]
    assert answer("1003")[0] == Outcome.drop("1003", "m")
    assert token_expired(Response(200, body=b'{"success":false,"errors":[{"code":"602"}]}'))
    assert not token_expired(Response(200, body=b'{"success":false,"errors":[{"code":"606"}]}'))


def test_a_message_without_email_is_dropped_without_a_request() -> None:
    outcomes, sent = run_exchange(MARKETO.start([item(MARKETO, audience_identify("m", "k", True))], settings(),
                                                Token("t")), lambda _r: Response(500))
    assert sent == [] and outcomes[0].kind == "drop" and outcomes[0].code == "MISSING_EMAIL"


def test_entry_exit_and_trait_arrive_as_marketo_expects(harness: Harness, fake: MarketoFake) -> None:
    worker = harness.worker("marketo", {**SETTINGS, "endpoint": fake.url, "activity_type_id": 100001})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="known@x.io"),
        audience_track("m2", "vip_buyers", False, email="new@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="c@x.io", user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == []
    assert fake.issued == 1
    sent = [s.json() for s in fake.fake.on("POST", "/rest/v1/leads.json")]
    assert {"email": "known@x.io", "vip_buyers": True} in [lead for s in sent for lead in s["input"]]
    assert {"email": "c@x.io", "ltv_90d": 412.5} in [lead for s in sent for lead in s["input"]]
    (activity,) = [s.json() for s in fake.fake.on("POST", "/rest/v1/activities/external.json")]
    assert activity["input"][0]["leadId"] == fake.leads["new@x.io"]
    assert activity["input"][0]["attributes"] == [{"name": "event", "value": "Audience Exited"},
                                                  {"name": "value", "value": False}]
    assert all(s.header("Authorization") == "Bearer mkto-token-1" for s in fake.fake.requests[1:])
    assert CLIENT_SECRET not in json.dumps(result.attempts)


def test_an_expired_token_601_is_refreshed_once_and_the_message_delivered(harness: Harness,
                                                                        fake: MarketoFake) -> None:
    worker = harness.worker("marketo", {**SETTINGS, "endpoint": fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("m1", "vip", True, email="a@x.io")])
    worker.drain(10)
    fake.live = "revoked-by-marketo"  # the next request answers 200 {success:false, errors:[601]}
    result = harness.run(worker, [audience_identify("m2", "vip", True, email="b@x.io", user_id="u2")])
    assert result.states == {"m1": "delivered", "m2": "delivered"}
    assert fake.issued == 2
    assert [(mid, n, outcome) for mid, n, outcome, _, _ in result.attempts] == [("m1", 1, "ok"), ("m2", 1, "ok")]
    second = json.loads(result.attempts[1][4] or "[]")
    assert [(r["purpose"], r["status"]) for r in second] == [("send", 200), ("token", 200), ("send", 200)]
    assert CLIENT_SECRET not in json.dumps(result.attempts)
    assert fake.fake.violations == []


def test_a_606_throttle_in_a_200_body_is_retried_and_nothing_is_lost(harness: Harness, fake: MarketoFake) -> None:
    worker = harness.worker("marketo", {**SETTINGS, "endpoint": fake.url}, backoff=SHORT)
    harness.enqueue(worker.destination_id, [audience_identify("w", "vip", True, email="w@x.io", user_id="w")])
    worker.drain(10)  # the token is fetched; the next REST call answers 606 in a 200 body
    fake.fake.script = [error("606", "Max rate limit '100' exceeded with in '20' secs")]
    result = harness.run(worker, [audience_identify(f"m{i}", "vip", True, email=f"u{i}@x.io", user_id=f"u{i}")
                                  for i in range(3)])
    assert set(result.states.values()) == {"delivered"}
    throttled = [(mid, n, outcome, code) for mid, n, outcome, code, _ in result.attempts if mid != "w"]
    assert throttled[:3] == [(f"m{i}", 1, "retry", "606") for i in range(3)]
    assert [mid for mid, n, outcome, *_ in throttled[3:]] == ["m0", "m1", "m2"]
    batches = [[lead["email"] for lead in s.json()["input"]] for s in fake.fake.on("POST", "/rest/v1/leads.json")]
    assert batches[:2] == [["w@x.io"], ["u0@x.io", "u1@x.io", "u2@x.io"]]
    upserts = fake.fake.on("POST", "/rest/v1/leads.json")
    assert upserts[2].at - upserts[1].at >= 0.19  # the 606's 20 s wait, capped by this test's backoff window
    assert sorted(email for batch in batches[2:] for email in batch) == ["u0@x.io", "u1@x.io", "u2@x.io"]


def test_a_skipped_record_fails_alone(harness: Harness, fake: MarketoFake) -> None:
    fake.reject = {"u1@x.io"}
    worker = harness.worker("marketo", {**SETTINGS, "endpoint": fake.url})
    result = harness.run(worker, [audience_identify(f"m{i}", "vip", True, email=f"u{i}@x.io", user_id=f"u{i}")
                                  for i in range(3)])
    assert result.states == {"m0": "delivered", "m1": "dead", "m2": "delivered"}
    assert result.codes["m1"] == "1003"
    assert len(fake.fake.on("POST", "/rest/v1/leads.json")) == 1  # the two good leads were not re-sent


def test_check_reads_lead_describe(fake: MarketoFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    target = DeliveryTarget.simple("d", MARKETO, settings(endpoint=fake.url))
    assert check_destination(target).ok
    wrong = DeliveryTarget.simple("d", MARKETO, settings(endpoint=fake.url, client_secret="nope-000"))
    verdict = check_destination(wrong)
    assert not verdict.ok and "nope-000" not in json.dumps(verdict.requests) + verdict.verdict


@pytest.mark.parametrize(("data", "named"), [
    ({"client_id": "c", "client_secret": "s"}, "api_endpoint"),
    ({**SETTINGS, "api_endpoint": "123-ABC-456.mktorest.com"}, "api_endpoint"),
    ({**SETTINGS, "client_secret": None}, "client_secret"),
    ({**SETTINGS, "activity_type_id": 0}, "activity_type_id"),
    ({**SETTINGS, "clientSecret": "x"}, "clientSecret"),
])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MARKETO.parse_settings(data)
    assert named in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)


def test_token_request_is_the_documented_query_string_grant() -> None:
    request: Request = MARKETO.auth.fetch(settings())  # type: ignore[union-attr]
    assert request.method == "GET" and request.url.startswith(
        "https://123-ABC-456.mktorest.com/identity/oauth/token?grant_type=client_credentials&client_id=mkto-client")


def test_a_secret_with_url_characters_is_redacted_from_the_token_url(harness: Harness, fake: MarketoFake) -> None:
    odd = "s3cr+t/with=chars&more"
    fake.secret = odd
    worker = harness.worker("marketo", {**SETTINGS, "client_secret": odd, "endpoint": fake.url})
    result = harness.run(worker, [audience_identify("m1", "vip", True, email="a@x.io")])
    assert result.states == {"m1": "delivered"}
    log = json.dumps(result.attempts)
    assert "/identity/oauth/token" in log  # the token request is in the debugger, its secret redacted
    assert "s3cr" not in log and "with%3Dchars" not in log


def test_a_batch_over_1_mb_is_split() -> None:
    big = "x" * 300_000
    items = [item(MARKETO, audience_identify(f"m{i}", "vip", True, email=f"u{i}@x.io", user_id=f"u{i}", notes=big))
             for i in range(5)]
    outcomes, sent = run_exchange(MARKETO.start(items, settings(), Token("t")),
                                  lambda r: ok_upsert(*range(len(json.loads(r.body)["input"]))))
    assert [r.indices for r in sent] == [(0, 1, 2), (3, 4)]
    assert all(len(r.body) < 1_000_000 for r in sent) and all(o.kind == "ok" for o in outcomes)
