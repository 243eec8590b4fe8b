"""Braze through the real delivery worker to a local /users/track fake, plus golden builds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.braze import braze_fake
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
    TS,
    audience_identify,
    audience_track,
    items,
    no_secret,
    trait_identify,
    trait_track,
)
from traitsync.destinations import get_destination
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate
from traitsync.destinations.vendors.braze import DESTINATION, BrazeSettings

KEY = "braze-rest-key-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = braze_fake(KEY).start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor, **extra: object) -> dict[str, object]:
    return {"api_key": KEY, "endpoint": fake.url, **extra}


def test_registered_with_the_seeds_cap() -> None:
    assert get_destination("braze") is DESTINATION
    assert default_rate(DESTINATION) == 100
    assert DESTINATION.max_batch == 75


def test_entry_exit_and_trait_arrive_as_braze_expects(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("braze", settings(fake, app_id="app-1"), batch_size=1)
    msgs = [audience_identify(1), audience_track(2), audience_track(3, member=False), trait_track(4),
            trait_identify(5)]
    result = harness.run(worker, msgs)
    assert set(result.states.values()) == {"delivered"}
    bodies = [r.json() for r in fake.on("POST", "/users/track")]
    assert bodies == [
        {"attributes": [{"external_id": "user-1", "vip_users": True, "email": "ann@example.com"}]},
        {"events": [{"external_id": "user-1", "app_id": "app-1", "name": "Audience Entered", "time": TS,
                     "properties": {"audience_key": "vip_users", "vip_users": True}}]},
        {"events": [{"external_id": "user-1", "app_id": "app-1", "name": "Audience Exited", "time": TS,
                     "properties": {"audience_key": "vip_users", "vip_users": False}}]},
        {"events": [{"external_id": "user-1", "app_id": "app-1", "name": "Trait Computed", "time": TS,
                     "properties": {"trait_key": "ltv_180d", "ltv_180d": 450.0}}]},
        {"attributes": [{"external_id": "user-1", "ltv_180d": 450.0, "email": "ann@example.com"}]},
    ]
    first = fake.on("POST", "/users/track")[0]
    assert first.header("Authorization") == f"Bearer {KEY}"
    assert fake.violations == []
    no_secret(KEY, result.attempts)


def test_a_partial_failure_retries_nothing_but_drops_only_the_refused_object(harness: Harness,
                                                                           fake: FakeVendor) -> None:
    fake.script.append(Answer(201, {"message": "success", "attributes_processed": 2,
                                    "errors": [{"type": "'external_id' is required", "input_array": "attributes",
                                                "index": 1}]}))
    worker = harness.worker("braze", settings(fake))
    msgs = [audience_identify(1, user_id="u1"), audience_identify(2, user_id="u2"), audience_track(3, user_id="u3"),
            audience_identify(4, user_id="u4")]
    result = harness.run(worker, msgs)
    assert result.states == {"m1": "delivered", "m2": "dead", "m3": "delivered", "m4": "delivered"}
    assert result.codes["m2"] == "BRAZE_REJECTED"  # attributes[1] is u2: the events array counts apart
    assert len(fake.on("POST", "/users/track")) == 1
    batch = fake.requests[0].json()
    assert [a["external_id"] for a in batch["attributes"]] == ["u1", "u2", "u4"]
    assert fake.requests[0].header("X-Braze-Batch") == "true"


def test_a_rejected_request_resends_only_the_innocent_objects(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(400, {"message": "Invalid data", "errors": [
        {"type": "invalid time", "input_array": "events", "index": 0}]}))
    worker = harness.worker("braze", settings(fake))
    result = harness.run(worker, [audience_identify(1, user_id="u1"), audience_track(2, user_id="u2"),
                                  audience_identify(3, user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "dead", "m3": "delivered"}
    resent = [o for r in fake.requests[1:] for o in r.json().get("attributes", []) + r.json().get("events", [])]
    assert sorted(o["external_id"] for o in resent) == ["u1", "u3"]


def test_a_throttle_waits_for_retry_after_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"message": "rate limited"}, headers={"X-Ratelimit-Retry-After": "0.2"}))
    worker = harness.worker("braze", settings(fake), batch_size=2)
    result = harness.run(worker, [audience_identify(i, user_id=f"u{i}") for i in range(4)])
    assert set(result.states.values()) == {"delivered"}
    throttled = [a for a in result.attempts if a[2] == "retry"]
    assert {a[3] for a in throttled} == {"429"}
    sent = fake.on("POST", "/users/track")
    throttled_ids = [o["external_id"] for o in sent[0].json()["attributes"]]
    resent = [r for r in sent[1:] if {o["external_id"] for o in r.json()["attributes"]} & set(throttled_ids)]
    assert resent and all(r.at - sent[0].at >= 0.19 for r in resent)  # X-Ratelimit-Retry-After honoured
    assert sorted(o["external_id"] for r in sent[1:] for o in r.json()["attributes"]) == [f"u{i}" for i in range(4)]


def test_a_bad_key_pauses_without_leaking_it(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("braze", {"api_key": "wrong-key-xyz-987", "endpoint": fake.url}, auth_pause_s=60)
    result = harness.run(worker, [audience_identify(1)], include_retries=False)
    assert result.codes == {"m1": "401"} and worker.paused
    no_secret("wrong-key-xyz-987", result.attempts)


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="api_key"):
        BrazeSettings.model_validate({"endpoint": "https://rest.iad-01.braze.com"})
    with pytest.raises(ValidationError, match="endpoint"):
        BrazeSettings.model_validate({"api_key": "k", "endpoint": "rest.iad-01.braze.com"})
    assert KEY not in repr(BrazeSettings(api_key=KEY))  # type: ignore[arg-type]


def test_golden_batches_of_75_and_identifier_fallbacks() -> None:
    s = BrazeSettings(api_key=KEY)  # type: ignore[arg-type]
    msgs = [audience_identify(i, user_id=f"u{i}") for i in range(80)]
    msgs.append(audience_track(80, user_id=None))
    msgs.append(audience_identify(81, user_id=None, email="only@example.com"))
    del msgs[-1]["anonymousId"]
    outcomes, sent = run_exchange(DESTINATION.start(items(DESTINATION, msgs[:75]), s),
                                  lambda _r: Response(201, body=b'{"message":"success"}'))
    assert len(sent) == 1 and outcomes == [Outcome.ok()] * 75
    assert sent[0].url == "https://rest.iad-01.braze.com/users/track"
    assert DESTINATION.build is not None
    requests = DESTINATION.build(items(DESTINATION, msgs), s)
    assert [len(r.indices) for r in requests] == [75, 7]
    tail = json.loads(requests[1].body)
    assert tail["events"][0]["user_alias"] == {"alias_name": "anon-1", "alias_label": "anonymous_id"}
    assert tail["attributes"][-1] == {"email": "only@example.com", "vip_users": True}


def test_an_item_without_any_identifier_is_refused_before_sending() -> None:
    from traitsync.errors import InvalidPayload

    msg = audience_identify(1, email=None, user_id=None)
    del msg["anonymousId"]
    assert DESTINATION.build is not None
    with pytest.raises(InvalidPayload, match="external_id"):
        DESTINATION.build(items(DESTINATION, [msg]), BrazeSettings(api_key=KEY))  # type: ignore[arg-type]
