"""Customer.io through the real delivery worker to a local Track API v2 fake, plus golden builds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.customerio import customerio_fake
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
    TS_S,
    audience_identify,
    audience_track,
    items,
    no_secret,
    trait_track,
)
from traitsync.delivery.check import check_destination
from traitsync.delivery.target import DeliveryTarget
from traitsync.destinations import get_destination
from traitsync.destinations.registry import default_rate
from traitsync.destinations.vendors.customerio import DESTINATION, CustomerIoSettings

SITE, KEY = "site-123", "cio-track-key-secret-77"


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = customerio_fake(SITE, KEY).start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor) -> dict[str, object]:
    return {"siteId": SITE, "apiKey": KEY, "endpoint": fake.url}


def test_registered_with_the_seeds_cap() -> None:
    assert get_destination("customerio") is DESTINATION and default_rate(DESTINATION) == 30


def test_entry_exit_and_trait_arrive_as_customerio_expects(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("customerio", settings(fake), batch_size=1)
    result = harness.run(worker, [audience_identify(1), audience_track(2), audience_track(3, member=False),
                                  trait_track(4)])
    assert set(result.states.values()) == {"delivered"}
    assert [r.json() for r in fake.on("POST", "/api/v2/entity")] == [
        {"type": "person", "action": "identify", "identifiers": {"id": "user-1"},
         "attributes": {"vip_users": True, "email": "ann@example.com"}, "timestamp": TS_S},
        {"type": "person", "action": "event", "identifiers": {"id": "user-1"}, "name": "Audience Entered",
         "id": "m2", "timestamp": TS_S, "attributes": {"audience_key": "vip_users", "vip_users": True}},
        {"type": "person", "action": "event", "identifiers": {"id": "user-1"}, "name": "Audience Exited",
         "id": "m3", "timestamp": TS_S, "attributes": {"audience_key": "vip_users", "vip_users": False}},
        {"type": "person", "action": "event", "identifiers": {"id": "user-1"}, "name": "Trait Computed",
         "id": "m4", "timestamp": TS_S, "attributes": {"trait_key": "ltv_180d", "ltv_180d": 450.0}},
    ]
    assert fake.violations == []
    no_secret(KEY, result.attempts)


def test_a_207_fails_only_the_listed_entities(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(207, {"errors": [{"batch_index": 1, "reason": "invalid", "field": "identifiers",
                                                "message": "bad id"}]}))
    result = harness.run(harness.worker("customerio", settings(fake)),
                         [audience_identify(i, user_id=f"u{i}") for i in range(3)])
    assert result.states == {"m0": "delivered", "m1": "dead", "m2": "delivered"}
    assert result.codes["m1"] == "invalid"
    assert [r.path for r in fake.requests] == ["/api/v2/batch"] and len(fake.requests[0].json()["batch"]) == 3
    assert fake.violations == []


def test_a_throttle_slows_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"meta": {"error": "slow down"}}, headers={"Retry-After": "0.1"}))
    result = harness.run(harness.worker("customerio", settings(fake)),
                         [audience_identify(i, user_id=f"u{i}") for i in range(3)])
    assert set(result.states.values()) == {"delivered"}
    def ids(seen: object) -> list[str]:
        body = seen.json()  # type: ignore[attr-defined]
        return [e["identifiers"]["id"] for e in body.get("batch", [body])]

    # the throttled batch is resent whole (perhaps split, as retries come due together or apart)
    assert ids(fake.requests[0]) == ["u0", "u1", "u2"]
    assert sorted(i for r in fake.requests[1:] for i in ids(r)) == ["u0", "u1", "u2"]


def test_a_bad_key_pauses_and_check_says_so(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("customerio", {"siteId": SITE, "apiKey": "bad-key-99", "endpoint": fake.url},
                            auth_pause_s=60)
    result = harness.run(worker, [audience_identify(1)], include_retries=False)
    assert result.codes == {"m1": "401"} and worker.paused
    no_secret("bad-key-99", result.attempts)
    assert check_destination(DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(fake)))).ok


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="siteId"):
        CustomerIoSettings.model_validate({"apiKey": "k"})
    with pytest.raises(ValidationError, match="accountRegion"):
        CustomerIoSettings.model_validate({"siteId": "s", "apiKey": "k", "accountRegion": "APAC"})


def test_golden_identifiers_regions_and_size_caps() -> None:
    eu = CustomerIoSettings(siteId="s", apiKey="k", accountRegion="EU")  # type: ignore[arg-type]
    assert DESTINATION.build is not None
    [one] = DESTINATION.build(items(DESTINATION, [audience_identify(1, user_id="cio_abc")]), eu)
    assert one.url == "https://track-eu.customer.io/api/v2/entity"
    assert b'"identifiers":{"cio_id":"abc"}' in one.body
    [by_email] = DESTINATION.build(items(DESTINATION, [audience_track(1, user_id=None)]), eu)
    assert b'"identifiers":{"email":"ann@example.com"}' in by_email.body
    big = [audience_identify(i, user_id=f"u{i}") for i in range(40)]
    for m in big:
        m["traits"]["notes"] = "x" * 20_000
    requests = DESTINATION.build(items(DESTINATION, big), eu)
    assert all(len(r.body) <= 500 * 1024 for r in requests) and sum(len(r.indices) for r in requests) == 40
    from traitsync.errors import InvalidPayload
    big[0]["traits"]["notes"] = "x" * 40_000
    with pytest.raises(InvalidPayload, match="32 KB"):
        DESTINATION.build(items(DESTINATION, big[:1]), eu)
