"""SendGrid contacts through the real delivery worker to a local fake, plus golden builds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.sendgrid import sendgrid_fake
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
    audience_identify,
    audience_track,
    items,
    no_secret,
    trait_identify,
)
from traitsync.delivery.check import check_destination
from traitsync.delivery.target import DeliveryTarget
from traitsync.destinations import get_destination
from traitsync.destinations.registry import default_rate
from traitsync.destinations.vendors.sendgrid import DESTINATION, SendgridSettings

KEY = "SG.secret-sendgrid-key.abc"
FIELDS = {"vip_users": "e1_N", "ltv_180d": "e2_N"}


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = sendgrid_fake(KEY).start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor, **extra: object) -> dict[str, object]:
    return {"sendGridApiKey": KEY, "endpoint": fake.url, "custom_fields": FIELDS, **extra}


def test_registered_with_the_seeds_cap() -> None:
    assert get_destination("sendgrid") is DESTINATION and default_rate(DESTINATION) == 100
    assert not DESTINATION.supports(audience_track(1))  # no event API in SendGrid Marketing


def test_entry_exit_and_trait_arrive_as_sendgrid_expects(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("sendgrid", settings(fake, list_ids=["list-1"]), batch_size=1)
    msgs = [audience_identify(1, email="Ann@Example.com"), audience_identify(2, member=False), trait_identify(3),
            audience_track(4)]
    result = harness.run(worker, msgs)
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered", "m4": "filtered"}
    assert [r.json() for r in fake.requests] == [
        {"list_ids": ["list-1"], "contacts": [{"email": "ann@example.com", "custom_fields": {"e1_N": 1}}]},
        {"list_ids": ["list-1"], "contacts": [{"email": "ann@example.com", "custom_fields": {"e1_N": 0}}]},
        {"list_ids": ["list-1"], "contacts": [{"email": "ann@example.com", "custom_fields": {"e2_N": 450.0}}]},
    ]
    assert fake.violations == []
    no_secret(KEY, result.attempts)


def test_one_invalid_email_is_dropped_and_the_rest_resent(harness: Harness, fake: FakeVendor) -> None:
    msgs = [audience_identify(1, user_id="u1", email="a@example.com"),
            audience_identify(2, user_id="u2", email="not-an-email"),
            audience_identify(3, user_id="u3", email="c@example.com")]
    result = harness.run(harness.worker("sendgrid", settings(fake)), msgs)
    assert result.states == {"m1": "delivered", "m2": "dead", "m3": "delivered"}
    emails = [[c["email"] for c in r.json()["contacts"]] for r in fake.requests]
    assert emails[0] == ["a@example.com", "not-an-email", "c@example.com"]
    assert sorted(e for batch in emails[1:] for e in batch) == ["a@example.com", "c@example.com"]


def test_a_throttle_slows_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"errors": [{"field": None, "message": "too many requests"}]},
                              headers={"Retry-After": "0.1"}))
    result = harness.run(harness.worker("sendgrid", settings(fake)), [audience_identify(1)])
    assert result.states == {"m1": "delivered"} and len(fake.requests) == 2


def test_a_bad_key_pauses_and_check_says_so(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("sendgrid", settings(fake, sendGridApiKey="SG.wrong-key"), auth_pause_s=60)
    result = harness.run(worker, [audience_identify(1)], include_retries=False)
    assert result.codes == {"m1": "401"} and worker.paused
    no_secret("SG.wrong-key", result.attempts)
    assert check_destination(DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(fake)))).ok


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="sendGridApiKey"):
        SendgridSettings.model_validate({})
    with pytest.raises(ValidationError, match="region"):
        SendgridSettings.model_validate({"sendGridApiKey": "k", "region": "us"})


def test_golden_batches_and_missing_email() -> None:
    s = SendgridSettings(sendGridApiKey="k")  # type: ignore[arg-type]
    assert DESTINATION.build is not None
    requests = DESTINATION.build(items(DESTINATION, [audience_identify(i, email=f"u{i}@x.io")
                                                     for i in range(1001)]), s)
    assert [len(r.indices) for r in requests] == [1000, 1]
    assert requests[0].url == "https://api.sendgrid.com/v3/marketing/contacts" and requests[0].method == "PUT"
    from traitsync.errors import InvalidPayload
    with pytest.raises(InvalidPayload, match="email"):
        DESTINATION.build(items(DESTINATION, [audience_identify(1, email=None)]), s)
