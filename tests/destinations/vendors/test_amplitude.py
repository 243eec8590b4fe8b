"""Amplitude through the real delivery worker to a local ingestion fake, plus golden builds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.amplitude import amplitude_fake
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
    TS_MS,
    audience_identify,
    audience_track,
    items,
    no_secret,
    trait_identify,
    trait_track,
)
from traitsync.destinations import get_destination
from traitsync.destinations.vendors.amplitude import DESTINATION, AmplitudeSettings

KEY = "amp-api-key-0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = amplitude_fake(KEY).start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor) -> dict[str, object]:
    return {"apiKey": KEY, "endpoint": fake.url}


def test_registered() -> None:
    assert get_destination("amplitude") is DESTINATION and DESTINATION.max_batch == 2000


def test_entry_exit_and_trait_arrive_as_amplitude_expects(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("amplitude", settings(fake), batch_size=1)
    result = harness.run(worker, [audience_track(1), audience_track(2, member=False), trait_track(3),
                                  audience_identify(4), trait_identify(5)])
    assert set(result.states.values()) == {"delivered"}
    events = [r.json() for r in fake.on("POST", "/2/httpapi")]
    assert events == [
        {"api_key": KEY, "events": [{"user_id": "user-1", "event_type": "Audience Entered", "time": TS_MS,
                                     "event_properties": {"audience_key": "vip_users", "vip_users": True},
                                     "insert_id": "m1"}]},
        {"api_key": KEY, "events": [{"user_id": "user-1", "event_type": "Audience Exited", "time": TS_MS,
                                     "event_properties": {"audience_key": "vip_users", "vip_users": False},
                                     "insert_id": "m2"}]},
        {"api_key": KEY, "events": [{"user_id": "user-1", "event_type": "Trait Computed", "time": TS_MS,
                                     "event_properties": {"trait_key": "ltv_180d", "ltv_180d": 450.0},
                                     "insert_id": "m3"}]},
    ]
    identifies = [r.form() for r in fake.on("POST", "/identify")]
    assert [json.loads(f["identification"][0]) for f in identifies] == [
        [{"user_id": "user-1", "user_properties": {"$set": {"vip_users": True, "email": "ann@example.com"}}}],
        [{"user_id": "user-1", "user_properties": {"$set": {"ltv_180d": 450.0, "email": "ann@example.com"}}}],
    ]
    assert fake.violations == []
    no_secret(KEY, result.attempts)


def test_rejected_events_are_dropped_and_the_rest_resent(harness: Harness, fake: FakeVendor) -> None:
    msgs = [audience_track(1, user_id="user-long-1"), audience_track(2, user_id="u2"),
            audience_track(3, user_id="user-long-3")]
    result = harness.run(harness.worker("amplitude", settings(fake)), msgs)
    assert result.states == {"m1": "delivered", "m2": "dead", "m3": "delivered"}
    sent = [[e["insert_id"] for e in r.json()["events"]] for r in fake.requests]
    assert sent[0] == ["m1", "m2", "m3"] and sorted(i for s in sent[1:] for i in s) == ["m1", "m3"]


def test_a_throttle_slows_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"code": 429, "error": "Too many requests", "throttled_events": [],
                                    "throttled_users": {}}, headers={"Retry-After": "0.1"}))
    result = harness.run(harness.worker("amplitude", settings(fake)),
                         [audience_track(i, user_id=f"user-{i:04d}") for i in range(3)])
    assert set(result.states.values()) == {"delivered"}
    resent = sorted(e["insert_id"] for r in fake.requests[1:] for e in r.json()["events"])
    assert resent == ["m0", "m1", "m2"]


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="apiKey"):
        AmplitudeSettings.model_validate({})
    with pytest.raises(ValidationError, match="region"):
        AmplitudeSettings.model_validate({"apiKey": "k", "region": "asia"})


def test_golden_regions_throttled_indices_and_batches() -> None:
    from traitsync.destinations.base import Outcome, Response, run_exchange

    eu = AmplitudeSettings(apiKey="k", region="europe")  # type: ignore[arg-type]
    answer = {"code": 429, "throttled_events": [1]}
    outcomes, sent = run_exchange(
        DESTINATION.start(items(DESTINATION, [audience_track(1), audience_track(2)]), eu),
        lambda _r: Response(429, body=json.dumps(answer).encode()))
    assert sent[0].url == "https://api.eu.amplitude.com/2/httpapi"
    assert outcomes == [Outcome.retry(None, "429"), Outcome.retry(30.0, "429")]
    assert DESTINATION.build is not None
    many = DESTINATION.build(items(DESTINATION, [audience_track(i) for i in range(2001)]), eu)
    assert [len(r.indices) for r in many] == [2000, 1]
