"""Zendesk: users/create_or_update with the required name trait, 422 dropped alone, 429 Retry-After honoured."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.fakes.zendesk import AGENT, API_TOKEN, OAUTH, ZendeskFake, throttled, zendesk_fake
from tests.destinations.harness import Harness
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.zendesk import DESTINATION as ZENDESK
from traitsync.destinations.vendors.zendesk import ZendeskSettings

SETTINGS = {"subdomain": "acme", "email": AGENT, "api_token": API_TOKEN}
BASIC = "Basic " + base64.b64encode(f"{AGENT}/token:{API_TOKEN}".encode()).decode()


@pytest.fixture
def fake() -> Iterator[ZendeskFake]:
    with zendesk_fake() as running:
        yield running


def settings(**over: object) -> ZendeskSettings:
    return ZendeskSettings.model_validate({**SETTINGS, **over})


def test_registered_with_the_engage_cap_and_asks_for_name() -> None:
    assert get_destination("zendesk") is ZENDESK and default_rate(ZENDESK) == 50
    assert ZENDESK.required_traits == frozenset({"name"})


def test_golden_entry_exit_and_trait_bodies() -> None:
    items = [item(ZENDESK, audience_identify("m1", "vip_buyers", True, email="a@x.io"), traits={"name": "Ada L"}),
             item(ZENDESK, audience_track("m2", "vip_buyers", False, email="b@x.io", user_id="u2"),
                  traits={"name": "Bob"}),
             item(ZENDESK, trait_identify("m3", "LTV 90d", 412.5, user_id="u3"), traits={"name": "Cy"})]
    outcomes, sent = run_exchange(ZENDESK.start(items, settings(), None),
                                  lambda _r: Response(200, body=b'{"user":{"id":5}}'))
    assert outcomes == [Outcome.ok({"user_id": "5"})] * 3
    assert {r.url for r in sent} == {"https://acme.zendesk.com/api/v2/users/create_or_update.json"}
    assert [json.loads(r.body) for r in sent] == [
        {"user": {"name": "Ada L", "email": "a@x.io", "external_id": "u1", "user_fields": {"vip_buyers": True}}},
        {"user": {"name": "Bob", "email": "b@x.io", "external_id": "u2", "user_fields": {"vip_buyers": False}}},
        {"user": {"name": "Cy", "external_id": "u3", "user_fields": {"ltv_90d": 412.5}}}]
    assert sent[0].headers["Authorization"] == BASIC


def test_name_falls_back_to_the_email_and_is_required_otherwise() -> None:
    got = run_exchange(ZENDESK.start([item(ZENDESK, audience_identify("m1", "vip", True, email="a@x.io")),
                                      item(ZENDESK, audience_identify("m2", "vip", True))], settings(), None),
                       lambda _r: Response(201, body=b"{}"))
    assert json.loads(got[1][0].body)["user"]["name"] == "a@x.io"
    assert got[0][1].kind == "drop" and got[0][1].code == "MISSING_NAME" and len(got[1]) == 1


def test_oauth_token_is_a_bearer() -> None:
    request = ZENDESK.check(ZendeskSettings(subdomain="acme", oauth_token=OAUTH), None)  # type: ignore[arg-type,misc]
    assert request.headers["Authorization"] == f"Bearer {OAUTH}"


def test_entry_exit_and_trait_arrive_as_zendesk_expects(harness: Harness, fake: ZendeskFake) -> None:
    worker = harness.worker("zendesk", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="known@x.io"),
        audience_track("m2", "vip_buyers", False, email="new@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="c@x.io", user_id="u3")],
        adapter_input={"traits": {"name": "Pat Doe"}})
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == []
    assert fake.users[1]["user_fields"] == {"vip_buyers": True}
    created = {u["external_id"]: u for u in fake.users.values()}
    assert created["u2"]["user_fields"] == {"vip_buyers": False} and created["u2"]["name"] == "Pat Doe"
    assert created["u3"]["user_fields"] == {"ltv_90d": 412.5}
    log = json.dumps(result.attempts)
    assert API_TOKEN not in log and BASIC.removeprefix("Basic ") not in log


def test_a_429_waits_for_retry_after_and_loses_nothing(harness: Harness, fake: ZendeskFake) -> None:
    worker = harness.worker("zendesk", {**SETTINGS, "endpoint": fake.fake.url})
    fake.fake.script = [throttled(1)]
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", True, email="known@x.io")])
    assert result.states == {"m1": "delivered"}
    assert [(n, o, c) for _, n, o, c, _ in result.attempts] == [(1, "retry", "429"), (2, "ok", None)]
    first, second = fake.fake.on("POST", "/api/v2/users")
    assert second.at - first.at >= 0.9  # Retry-After: 1 was honoured
    assert fake.users[1]["user_fields"] == {"vip_buyers": True}


def test_a_record_invalid_fails_only_its_message(harness: Harness, fake: ZendeskFake) -> None:
    worker = harness.worker("zendesk", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [audience_identify("m1", "vip", True, email="broken@", user_id="u7"),
                                  audience_identify("m2", "vip", True, email="fine@x.io", user_id="u8")])
    assert result.states == {"m1": "dead", "m2": "delivered"} and result.codes["m1"] == "RecordInvalid"
    assert len(fake.fake.on("POST", "/api/v2/users")) == 2


def test_check(fake: ZendeskFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    assert check_destination(DeliveryTarget.simple("d", ZENDESK, settings(endpoint=fake.fake.url))).ok
    wrong = check_destination(DeliveryTarget.simple("d", ZENDESK, settings(endpoint=fake.fake.url,
                                                                         api_token="nope-123")))
    assert not wrong.ok and "nope-123" not in wrong.verdict + json.dumps(wrong.requests)


@pytest.mark.parametrize(("data", "named"), [
    ({"subdomain": "acme"}, "api_token"),
    ({"subdomain": "acme", "api_token": API_TOKEN}, "email"),
    ({**SETTINGS, "subdomain": "https://acme.zendesk.com"}, "subdomain"),
])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ZENDESK.parse_settings(data)
    assert named in str(caught.value) and API_TOKEN not in str(caught.value)
