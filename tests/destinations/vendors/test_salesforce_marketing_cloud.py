"""Salesforce Marketing Cloud: v2 token, data extension rowsets (bad row found by replay), journey events."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.fakes.salesforce_marketing_cloud import (
    CLIENT_ID,
    CLIENT_SECRET,
    DE_KEY,
    EVENT_KEY,
    SfmcFake,
    sfmc_fake,
    unable_to_save,
)
from tests.destinations.harness import Harness
from traitsync.destinations.auth import Token
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.salesforce_marketing_cloud import DESTINATION as SFMC
from traitsync.destinations.vendors.salesforce_marketing_cloud import SfmcSettings

SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"
SETTINGS = {"subdomain": SUBDOMAIN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "data_extension_key": DE_KEY, "event_definition_key": EVENT_KEY}
TOKEN = Token("t", extra={"rest_instance_url": f"https://{SUBDOMAIN}.rest.marketingcloudapis.com/"})
REST = f"https://{SUBDOMAIN}.rest.marketingcloudapis.com"


@pytest.fixture
def fake() -> Iterator[SfmcFake]:
    with sfmc_fake() as running:
        yield running


def settings(**over: object) -> SfmcSettings:
    return SfmcSettings.model_validate({**SETTINGS, **over})


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("salesforce_marketing_cloud") is SFMC and default_rate(SFMC) == 20


def test_golden_identifies_become_one_rowset() -> None:
    items = [item(SFMC, audience_identify("m1", "vip_buyers", True, email="a@x.io")),
             item(SFMC, audience_identify("m2", "vip_buyers", False, user_id="u2")),
             item(SFMC, trait_identify("m3", "ltv_90d", 412.5, user_id="u3"))]
    outcomes, sent = run_exchange(SFMC.start(items, settings(), TOKEN), lambda r: Response(200, body=r.body))
    assert outcomes == [Outcome.ok()] * 3
    assert [(r.method, r.url, r.indices) for r in sent] == [
        ("POST", f"{REST}/hub/v1/dataevents/key:{DE_KEY}/rowset", (0, 1, 2))]
    assert json.loads(sent[0].body) == [
        {"keys": {"ContactKey": "u1"}, "values": {"vip_buyers": True, "email": "a@x.io"}},
        {"keys": {"ContactKey": "u2"}, "values": {"vip_buyers": False}},
        {"keys": {"ContactKey": "u3"}, "values": {"ltv_90d": 412.5}}]


def test_golden_tracks_fire_journey_entry_events() -> None:
    message = audience_track("m1", "vip_buyers", False, email="a@x.io")
    outcomes, sent = run_exchange(SFMC.start([item(SFMC, message)], settings(), TOKEN),
                                  lambda _r: Response(201, body=b'{"eventInstanceId":"e1"}'))
    assert outcomes == [Outcome.ok()]
    assert (sent[0].method, sent[0].url) == ("POST", f"{REST}/interaction/v1/events")
    assert json.loads(sent[0].body) == {"ContactKey": "u1", "EventDefinitionKey": EVENT_KEY,
                                        "Data": {"Event": "Audience Exited", "vip_buyers": False, "email": "a@x.io"}}


def test_golden_contact_attribute_set() -> None:
    message = trait_identify("m1", "ltv_90d", 412.5)
    conf = settings(data_extension_key=None, contact_attribute_set="Engage Traits")
    _, sent = run_exchange(SFMC.start([item(SFMC, message)], conf, TOKEN),
                           lambda _r: Response(200, body=b'{"operationStatus":"OK","hasErrors":false}'))
    assert sent[0].url == f"{REST}/contacts/v1/contacts"
    assert json.loads(sent[0].body) == {"contactKey": "u1", "attributeSets": [{"name": "Engage Traits", "items": [
        {"values": [{"name": "ltv_90d", "value": 412.5}]}]}]}


def test_a_transient_10006_is_retried_but_a_missing_field_is_not() -> None:
    def outcome(answer: Response) -> Outcome:
        only = [item(SFMC, audience_identify("m1", "vip", True))]
        return run_exchange(SFMC.start(only, settings(), TOKEN), lambda _r: answer)[0][0]
    transient, missing = unable_to_save(), unable_to_save("vip")
    assert outcome(Response(400, body=json.dumps(transient.body).encode())).kind == "retry"
    assert outcome(Response(400, body=json.dumps(missing.body).encode())) == Outcome.drop(
        "10000", "The field vip does not exist")


def test_entry_exit_and_trait_arrive_as_sfmc_expects(harness: Harness, fake: SfmcFake) -> None:
    worker = harness.worker("salesforce_marketing_cloud", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="a@x.io"),
        audience_track("m2", "vip_buyers", False, email="b@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == [] and fake.issued == 1
    assert fake.rows == {"u1": {"vip_buyers": True, "email": "a@x.io"},
                         "u3": {"ltv_90d": 412.5}}
    assert fake.events == [{"ContactKey": "u2", "EventDefinitionKey": EVENT_KEY,
                            "Data": {"Event": "Audience Exited", "vip_buyers": False, "email": "b@x.io"}}]
    token_body = fake.fake.on("POST", "/v2/token")[0].json()
    assert token_body == {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert CLIENT_SECRET not in json.dumps(result.attempts) and "sfmc-token" not in json.dumps(result.attempts)


def test_a_bad_row_is_found_by_replay_and_fails_alone(harness: Harness, fake: SfmcFake) -> None:
    worker = harness.worker("salesforce_marketing_cloud", {**SETTINGS, "endpoint": fake.fake.url})
    messages = [audience_identify("m0", "vip_buyers", True, user_id="u0"),
                audience_identify("m1", "vip_buyers", True, user_id="u1", favourite_colour="teal"),
                audience_identify("m2", "vip_buyers", True, user_id="u2")]
    result = harness.run(worker, messages)
    assert result.states == {"m0": "delivered", "m1": "dead", "m2": "delivered"}
    assert result.codes["m1"] == "10000"
    assert set(fake.rows) == {"u0", "u2"}
    sizes = [len(s.json()) for s in fake.fake.on("POST", "/hub/v1/dataevents")]
    assert sizes == [3, 1, 1, 1]  # the batch, then each row alone (u0 twice: upserts are idempotent)
    assert all(n == 1 for _, n, *_ in result.attempts)


def test_an_expired_token_is_refreshed_once(harness: Harness, fake: SfmcFake) -> None:
    worker = harness.worker("salesforce_marketing_cloud", {**SETTINGS, "endpoint": fake.fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("m1", "vip_buyers", True)])
    worker.drain(10)
    fake.live = "expired-after-20-minutes"
    result = harness.run(worker, [audience_identify("m2", "vip_buyers", False, user_id="u2")])
    assert result.states == {"m1": "delivered", "m2": "delivered"} and fake.issued == 2
    assert [(mid, n, o) for mid, n, o, *_ in result.attempts] == [("m1", 1, "ok"), ("m2", 1, "ok")]
    assert CLIENT_SECRET not in json.dumps(result.attempts)


def test_a_throttle_is_retried_and_nothing_is_lost(harness: Harness, fake: SfmcFake) -> None:
    from tests.destinations.fakes.server import Answer

    worker = harness.worker("salesforce_marketing_cloud", {**SETTINGS, "endpoint": fake.fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("w", "vip_buyers", True, user_id="w")])
    worker.drain(10)
    fake.fake.script = [Answer(429, {"message": "Too many requests"}, headers={"Retry-After": "0.1"})]
    result = harness.run(worker, [audience_identify(f"m{i}", "vip_buyers", True, user_id=f"u{i}") for i in range(3)])
    assert set(result.states.values()) == {"delivered"}
    assert set(fake.rows) == {"w", "u0", "u1", "u2"}
    assert next((n, o, c) for mid, n, o, c, _ in result.attempts if mid == "m0") == (1, "retry", "429")


@pytest.mark.parametrize(("data", "named"), [
    ({**SETTINGS, "subdomain": "https://x.auth.marketingcloudapis.com"}, "subdomain"),
    ({k: v for k, v in SETTINGS.items() if k != "client_secret"}, "client_secret"),
    ({"subdomain": SUBDOMAIN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "data_extension_key"),
])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SFMC.parse_settings(data)
    assert named in str(caught.value) and CLIENT_SECRET not in str(caught.value)


def test_token_goes_to_the_tenant_auth_host_with_the_business_unit() -> None:
    assert SFMC.auth is not None
    request = SFMC.auth.fetch(settings(account_id="514009271"))
    assert request.url == f"https://{SUBDOMAIN}.auth.marketingcloudapis.com/v2/token"
    assert json.loads(request.body)["account_id"] == "514009271"


def test_check(fake: SfmcFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    assert check_destination(DeliveryTarget.simple("d", SFMC, settings(endpoint=fake.fake.url))).ok
