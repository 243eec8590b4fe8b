"""Iterable (single and bulk) through the real delivery worker to a local fake, plus golden builds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.iterable import iterable_fake
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
    TS_S,
    audience_identify,
    audience_track,
    items,
    no_secret,
    trait_identify,
    trait_track,
)
from traitsync.delivery.check import check_destination
from traitsync.delivery.target import DeliveryTarget
from traitsync.destinations import get_destination
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate
from traitsync.destinations.vendors.iterable import BULK_DESTINATION, DESTINATION, IterableSettings

KEY = "iterable-key-abcdef0123"


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = iterable_fake(KEY).start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor) -> dict[str, object]:
    return {"apiKey": KEY, "endpoint": fake.url}


def test_registered_with_the_seeds_cap() -> None:
    assert get_destination("iterable") is DESTINATION and get_destination("iterable_bulk") is BULK_DESTINATION
    assert default_rate(DESTINATION) == 500
    assert default_rate(BULK_DESTINATION) == 5 and BULK_DESTINATION.max_batch == 1000


def test_entry_exit_and_trait_arrive_as_iterable_expects(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("iterable", settings(fake))
    result = harness.run(worker, [audience_identify(1, email=" Ann@Example.com"), audience_track(2),
                                  audience_track(3, member=False), trait_track(4), trait_identify(5)])
    assert set(result.states.values()) == {"delivered"}
    assert [(r.path, r.json()) for r in fake.requests] == [
        ("/api/users/update", {"email": "ann@example.com", "userId": "user-1",
                               "dataFields": {"vip_users": True}, "preferUserId": True}),
        ("/api/events/track", {"email": "ann@example.com", "userId": "user-1", "eventName": "Audience Entered",
                               "id": "m2", "createdAt": TS_S,
                               "dataFields": {"audience_key": "vip_users", "vip_users": True}}),
        ("/api/events/track", {"email": "ann@example.com", "userId": "user-1", "eventName": "Audience Exited",
                               "id": "m3", "createdAt": TS_S,
                               "dataFields": {"audience_key": "vip_users", "vip_users": False}}),
        ("/api/events/track", {"email": "ann@example.com", "userId": "user-1", "eventName": "Trait Computed",
                               "id": "m4", "createdAt": TS_S,
                               "dataFields": {"trait_key": "ltv_180d", "ltv_180d": 450.0}}),
        ("/api/users/update", {"email": "ann@example.com", "userId": "user-1",
                               "dataFields": {"ltv_180d": 450.0}, "preferUserId": True}),
    ]
    assert all(r.header("Api-Key") == KEY for r in fake.requests)
    assert fake.violations == []
    no_secret(KEY, result.attempts)


def test_bulk_partial_failure_retries_nothing_and_fails_only_the_listed_users(harness: Harness,
                                                                              fake: FakeVendor) -> None:
    fake.script.append(Answer(200, {"successCount": 2, "failCount": 2, "invalidEmails": ["bad@example.com"],
                                    "failedUpdates": {"conflictUserIds": ["u3"], "forgottenUserIds": ["u4"]}}))
    worker = harness.worker("iterable_bulk", settings(fake))
    msgs = [audience_identify(1, user_id="u1"), audience_identify(2, user_id=None, email="bad@example.com"),
            audience_identify(3, user_id="u3"), audience_identify(4, user_id="u4"),
            audience_identify(5, user_id="u5")]
    result = harness.run(worker, msgs)
    assert result.states == {"m1": "delivered", "m2": "dead", "m3": "dead", "m4": "delivered",
                             "m5": "delivered"}
    assert result.codes["m2"] == "invalidEmails" and result.codes["m3"] == "conflictUserIds"
    assert len(fake.requests) == 1 and len(fake.requests[0].json()["users"]) == 5
    assert fake.violations == []


def test_bulk_sends_users_and_events_to_their_endpoints(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("iterable_bulk", settings(fake))
    result = harness.run(worker, [audience_identify(i, user_id=f"u{i}") for i in range(3)] +
                         [audience_track(i, user_id=f"u{i}") for i in range(3, 5)])
    assert set(result.states.values()) == {"delivered"}
    assert sorted(r.path for r in fake.requests) == ["/api/events/trackBulk", "/api/users/bulkUpdate"]
    assert fake.violations == []


def test_a_throttle_slows_down_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"msg": "Rate limit exceeded", "code": "RateLimitExceeded"},
                              headers={"Retry-After": "0.2"}))
    worker = harness.worker("iterable", settings(fake))
    result = harness.run(worker, [audience_identify(1, user_id="u1"), audience_identify(2, user_id="u2")])
    assert set(result.states.values()) == {"delivered"}
    assert [a[2:4] for a in result.attempts if a[2] != "ok"] == [("retry", "429")]
    assert len(fake.requests) == 3


def test_a_bad_request_is_dropped_with_iterables_code(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(400, {"msg": "Invalid email", "code": "InvalidEmailAddressError"}))
    result = harness.run(harness.worker("iterable", settings(fake)), [audience_identify(1)])
    assert result.states == {"m1": "dead"} and result.codes == {"m1": "InvalidEmailAddressError"}


def test_a_bad_key_pauses_and_check_reports_it(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("iterable", {"apiKey": "nope-key-42", "endpoint": fake.url}, auth_pause_s=60)
    result = harness.run(worker, [audience_identify(1)], include_retries=False)
    assert result.codes == {"m1": "BadApiKey"} and worker.paused
    no_secret("nope-key-42", result.attempts)
    good = DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(fake)))
    assert check_destination(good).ok
    bad = DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings({"apiKey": "nope-key-42",
                                                                               "endpoint": fake.url}))
    verdict = check_destination(bad)
    assert not verdict.ok and "nope-key-42" not in json.dumps(verdict.requests)


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="apiKey"):
        IterableSettings.model_validate({})
    with pytest.raises(ValidationError, match="dataCenterLocation"):
        IterableSettings.model_validate({"apiKey": "k", "dataCenterLocation": "mars"})


def test_golden_regions_and_identity_rules() -> None:
    eu = IterableSettings(apiKey="k", dataCenterLocation="europe")  # type: ignore[arg-type]
    outcomes, sent = run_exchange(DESTINATION.start(items(DESTINATION, [audience_track(1)]), eu),
                                  lambda _r: Response(200, body=b'{"code":"Success"}'))
    assert sent[0].url == "https://api.eu.iterable.com/api/events/track" and outcomes == [Outcome.ok()]
    from traitsync.errors import InvalidPayload
    assert DESTINATION.build is not None
    with pytest.raises(InvalidPayload, match="spaces"):
        DESTINATION.build(items(DESTINATION, [audience_identify(1, user_id=" u1")]), eu)
    anonymous = audience_identify(1, user_id=None, email=None)
    with pytest.raises(InvalidPayload, match="email or a userId"):
        DESTINATION.build(items(DESTINATION, [anonymous]), eu)


def test_golden_bulk_splits_at_1000() -> None:
    s = IterableSettings(apiKey="k")  # type: ignore[arg-type]
    assert BULK_DESTINATION.build is not None
    requests = BULK_DESTINATION.build(items(BULK_DESTINATION, [audience_identify(i, user_id=f"u{i}")
                                                               for i in range(1001)]), s)
    assert [len(r.indices) for r in requests] == [1000, 1]
