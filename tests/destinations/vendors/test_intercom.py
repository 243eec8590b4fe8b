"""Intercom: search then update or create, data events, 409 and 429 retried."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.fakes.intercom import TOKEN, IntercomFake, error, intercom_fake
from tests.destinations.harness import Harness
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.intercom import DESTINATION as INTERCOM
from traitsync.destinations.vendors.intercom import IntercomSettings, answer_outcome

SETTINGS = {"access_token": TOKEN}


@pytest.fixture
def fake() -> Iterator[IntercomFake]:
    with intercom_fake() as running:
        yield running


def settings(**over: object) -> IntercomSettings:
    return IntercomSettings.model_validate({**SETTINGS, **over})


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("intercom") is INTERCOM and default_rate(INTERCOM) == 8


def test_golden_entry_updates_the_one_contact_search_found() -> None:
    answers = iter([Response(200, body=b'{"type":"list","data":[{"id":"c7","email":"a@x.io"}]}'),
                    Response(200, body=b'{"type":"contact","id":"c7"}')])
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    outcomes, sent = run_exchange(INTERCOM.start([item(INTERCOM, message)], settings(region="EU"), None),
                                  lambda _r: next(answers))
    assert outcomes == [Outcome.ok({"contact_id": "c7"})]
    assert [(r.purpose, r.method, r.url) for r in sent] == [
        ("lookup", "POST", "https://api.eu.intercom.io/contacts/search"),
        ("send", "PUT", "https://api.eu.intercom.io/contacts/c7")]
    assert json.loads(sent[0].body) == {"query": {"field": "external_id", "operator": "=", "value": "u1"}}
    assert json.loads(sent[1].body) == {"custom_attributes": {"vip_buyers": True}}
    assert sent[1].headers["Intercom-Version"] == "2.11"
    assert sent[1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_golden_a_trait_creates_a_missing_user_and_an_email_only_profile_a_lead() -> None:
    answers = iter([Response(200, body=b'{"data":[]}'), Response(200, body=b'{"id":"c8"}')] * 2)
    items = [item(INTERCOM, trait_identify("m1", "ltv_90d", 412.5, email="a@x.io", name="Ada")),
             item(INTERCOM, audience_identify("m2", "vip_buyers", False, email="b@x.io", user_id=None))]
    _, sent = run_exchange(INTERCOM.start(items, settings(), None), lambda _r: next(answers))
    assert json.loads(sent[1].body) == {"role": "user", "external_id": "u1", "email": "a@x.io", "name": "Ada",
                                        "custom_attributes": {"ltv_90d": 412.5}}
    assert json.loads(sent[2].body) == {"query": {"field": "email", "operator": "=", "value": "b@x.io"}}
    assert json.loads(sent[3].body) == {"role": "lead", "email": "b@x.io",
                                        "custom_attributes": {"vip_buyers": False}}


def test_golden_exit_track_is_a_data_event() -> None:
    message = audience_track("m1", "vip_buyers", False, email="a@x.io")
    outcomes, sent = run_exchange(INTERCOM.start([item(INTERCOM, message)], settings(), None),
                                  lambda _r: Response(202))
    assert outcomes == [Outcome.ok()]
    assert (sent[0].method, sent[0].url) == ("POST", "https://api.intercom.io/events")
    assert json.loads(sent[0].body) == {"event_name": "Audience Exited", "created_at": 1796040000, "user_id": "u1",
                                        "metadata": {"audience_key": "vip_buyers", "vip_buyers": False}}


def test_429_waits_until_the_reset_and_409_is_retried() -> None:
    throttled = Response(429, headers={"x-ratelimit-reset": "1000"},
                         body=b'{"errors":[{"code":"rate_limit_exceeded"}]}')
    assert answer_outcome(throttled, now=990.0) == Outcome.retry(10.0, "429", None)
    assert answer_outcome(Response(409, body=b'{"errors":[{"code":"conflict","message":"m"}]}')) == Outcome.retry(
        code="409", message="m")
    assert answer_outcome(Response(400, body=b'{"errors":[{"code":"parameter_invalid","message":"m"}]}')) == (
        Outcome.drop("parameter_invalid", "m"))


def test_entry_exit_and_trait_arrive_as_intercom_expects(harness: Harness, fake: IntercomFake) -> None:
    worker = harness.worker("intercom", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="known@x.io"),
        audience_track("m2", "vip_buyers", False, email="new@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="c@x.io", user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == []
    assert fake.contacts["c1"]["custom_attributes"] == {"vip_buyers": True}
    assert fake.events == [{"event_name": "Audience Exited", "created_at": 1796040000, "user_id": "u2",
                            "metadata": {"audience_key": "vip_buyers", "vip_buyers": False}}]
    created = next(c for c in fake.contacts.values() if c.get("external_id") == "u3")
    assert created["custom_attributes"] == {"ltv_90d": 412.5} and created["email"] == "c@x.io"
    assert TOKEN not in json.dumps(result.attempts)


def test_a_409_while_search_lags_is_retried_and_then_updates(harness: Harness, fake: IntercomFake) -> None:
    fake.contacts["c9"] = {"id": "c9", "role": "user", "external_id": "u9", "custom_attributes": {}}
    fake.unindexed = {"c9"}
    worker = harness.worker("intercom", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", True, user_id="u9")])
    assert result.states == {"m1": "delivered"}
    assert [(n, o, c) for _, n, o, c, _ in result.attempts] == [(1, "retry", "409"), (2, "ok", None)]
    assert fake.contacts["c9"]["custom_attributes"] == {"vip_buyers": True}


def test_a_429_slows_down_and_loses_nothing(harness: Harness, fake: IntercomFake) -> None:
    worker = harness.worker("intercom", {**SETTINGS, "endpoint": fake.fake.url})
    fake.fake.script = [error(429, "rate_limit_exceeded", "Exceeded rate limit")]
    result = harness.run(worker, [audience_identify(f"m{i}", "vip_buyers", True, user_id=f"u{i}", email=f"{i}@x.io")
                                  for i in (1, 2)])
    assert set(result.states.values()) == {"delivered"}
    assert ("m1", 1, "retry", "429") in [(m, n, o, c) for m, n, o, c, _ in result.attempts]
    assert fake.contacts["c1"]["custom_attributes"] == {"vip_buyers": True}


def test_an_unknown_data_attribute_fails_only_its_message(harness: Harness, fake: IntercomFake) -> None:
    worker = harness.worker("intercom", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [audience_identify("m1", "churn_risk", True, user_id="u1"),
                                  audience_identify("m2", "vip_buyers", True, user_id="u2")])
    assert result.states == {"m1": "dead", "m2": "delivered"} and result.codes["m1"] == "parameter_invalid"


def test_check(fake: IntercomFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    assert check_destination(DeliveryTarget.simple("d", INTERCOM, settings(endpoint=fake.fake.url))).ok
    wrong = check_destination(DeliveryTarget.simple("d", INTERCOM, settings(endpoint=fake.fake.url,
                                                                           access_token="bad-token-77")))
    assert not wrong.ok and "bad-token-77" not in wrong.verdict + json.dumps(wrong.requests)


@pytest.mark.parametrize(("data", "named"), [({}, "access_token"), ({**SETTINGS, "region": "APAC"}, "region"),
                                             ({**SETTINGS, "api_version": "latest"}, "api_version")])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        INTERCOM.parse_settings(data)
    assert named in str(caught.value) and TOKEN not in str(caught.value)
