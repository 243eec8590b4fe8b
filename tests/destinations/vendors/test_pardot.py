"""Pardot: Salesforce OAuth + Pardot-Business-Unit-Id, upsertLatestByEmail, daily limit retried."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.fakes.pardot import (
    BUSINESS_UNIT,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    PardotFake,
    pardot_fake,
)
from tests.destinations.fakes.server import Answer
from tests.destinations.harness import Harness
from traitsync.delivery.backoff import Backoff
from traitsync.destinations.auth import Token
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.pardot import DESTINATION as PARDOT
from traitsync.destinations.vendors.pardot import PardotSettings

SETTINGS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN,
            "businessUnitID": BUSINESS_UNIT}
SHORT = Backoff(base=0.01, cap=0.05, max_attempts=5, give_up_after=0.2, jitter=False)
URL = "https://pi.pardot.com/api/v5/objects/prospects/do/upsertLatestByEmail"


@pytest.fixture
def fake() -> Iterator[PardotFake]:
    with pardot_fake() as running:
        yield running


def settings(**over: object) -> PardotSettings:
    return PardotSettings.model_validate({**SETTINGS, **over})


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("pardot") is PARDOT and default_rate(PARDOT) == 2


def test_golden_entry_exit_and_trait_bodies() -> None:
    items = [item(PARDOT, audience_identify("m1", "vip_buyers", True, email="a@x.io", first_name="Ada")),
             item(PARDOT, audience_track("m2", "vip_buyers", False, email="b@x.io", user_id="u2")),
             item(PARDOT, trait_identify("m3", "ltv_90d", 412.5, email="c@x.io", user_id="u3"))]
    outcomes, sent = run_exchange(PARDOT.start(items, settings(), Token("t")),
                                  lambda _r: Response(200, body=b'{"id":42}'))
    assert outcomes == [Outcome.ok({"prospect_id": "42"})] * 3
    assert {(r.method, r.url) for r in sent} == {("POST", URL)}
    assert [json.loads(r.body) for r in sent] == [
        {"matchEmail": "a@x.io", "prospect": {"email": "a@x.io", "vip_buyers__c": True, "firstName": "Ada"},
         "secondaryDeletedSearch": True},
        {"matchEmail": "b@x.io", "prospect": {"email": "b@x.io", "vip_buyers__c": False},
         "secondaryDeletedSearch": True},
        {"matchEmail": "c@x.io", "prospect": {"email": "c@x.io", "ltv_90d__c": 412.5},
         "secondaryDeletedSearch": True}]
    assert sent[0].headers["Pardot-Business-Unit-Id"] == BUSINESS_UNIT


def test_sandbox_hosts() -> None:
    assert PARDOT.auth is not None
    assert PARDOT.auth.fetch(settings(isSandbox=True)).url == "https://test.salesforce.com/services/oauth2/token"
    _, sent = run_exchange(PARDOT.start([item(PARDOT, audience_identify("m", "k", True, email="a@x.io"))],
                                        settings(isSandbox=True), Token("t")), lambda _r: Response(200))
    assert sent[0].url.startswith("https://pi.demo.pardot.com/api/v5/")


def test_entry_exit_and_trait_arrive_as_pardot_expects(harness: Harness, fake: PardotFake) -> None:
    worker = harness.worker("pardot", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="known@x.io"),
        audience_track("m2", "vip_buyers", False, email="new@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="known@x.io", user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == [] and fake.issued == 1
    assert fake.prospects["known@x.io"] == {"id": 1, "email": "known@x.io", "vip_buyers__c": True,
                                            "ltv_90d__c": 412.5}
    assert fake.prospects["new@x.io"]["vip_buyers__c"] is False
    log = json.dumps(result.attempts)
    assert CLIENT_SECRET not in log and REFRESH_TOKEN not in log and "pardot-1" not in log


def test_an_expired_token_is_refreshed_once(harness: Harness, fake: PardotFake) -> None:
    worker = harness.worker("pardot", {**SETTINGS, "endpoint": fake.fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("m1", "vip_buyers", True, email="known@x.io")])
    worker.drain(10)
    fake.live = "revoked"
    result = harness.run(worker, [audience_identify("m2", "vip_buyers", False, email="known@x.io", user_id="u2")])
    assert result.states == {"m1": "delivered", "m2": "delivered"} and fake.issued == 2
    assert [(m, n, o) for m, n, o, *_ in result.attempts] == [("m1", 1, "ok"), ("m2", 1, "ok")]
    assert fake.prospects["known@x.io"]["vip_buyers__c"] is False


def test_the_daily_limit_is_retried_and_nothing_is_lost(harness: Harness, fake: PardotFake) -> None:
    worker = harness.worker("pardot", {**SETTINGS, "endpoint": fake.fake.url}, backoff=SHORT)
    harness.enqueue(worker.destination_id, [audience_identify("w", "vip_buyers", True, email="w@x.io", user_id="w")])
    worker.drain(10)
    fake.fake.script = [Answer(429, {"code": 66, "message": "Daily API rate limit met"})]
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", True, email="known@x.io")])
    assert result.states["m1"] == "delivered"
    assert [(n, o, c) for m, n, o, c, _ in result.attempts if m == "m1"] == [(1, "retry", "66"), (2, "ok", None)]


def test_an_invalid_field_fails_only_its_message(harness: Harness, fake: PardotFake) -> None:
    worker = harness.worker("pardot", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [audience_identify("m1", "churn_risk", True, email="a@x.io"),
                                  audience_identify("m2", "vip_buyers", True, email="b@x.io", user_id="u2")])
    assert result.states == {"m1": "dead", "m2": "delivered"} and result.codes["m1"] == "62"


def test_check(fake: PardotFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    assert check_destination(DeliveryTarget.simple("d", PARDOT, settings(endpoint=fake.fake.url))).ok


@pytest.mark.parametrize(("data", "named"), [
    ({**SETTINGS, "businessUnitID": "12345"}, "businessUnitID"),
    ({k: v for k, v in SETTINGS.items() if k != "refresh_token"}, "refresh_token"),
])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PARDOT.parse_settings(data)
    assert named in str(caught.value) and CLIENT_SECRET not in str(caught.value)
