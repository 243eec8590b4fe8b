"""Resci through the real delivery worker to a local Segment-format ingestion fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.resci import PATH, resci_fake
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
    audience_identify,
    audience_track,
    no_secret,
    trait_track,
)
from traitsync.destinations import get_destination
from traitsync.destinations.registry import default_rate
from traitsync.destinations.vendors.resci import DESTINATION, ResciSettings

KEY = "resci-api-password-xyz"


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = resci_fake(KEY).start()
    yield vendor
    vendor.stop()


def test_registered_with_the_seeds_cap() -> None:
    assert get_destination("resci") is DESTINATION and default_rate(DESTINATION) == 200


def test_entry_exit_and_trait_arrive_as_segment_messages(harness: Harness, fake: FakeVendor) -> None:
    msgs = [audience_identify(1), audience_track(2), audience_track(3, member=False), trait_track(4)]
    result = harness.run(harness.worker("resci", {"api_key": KEY, "endpoint": fake.url + PATH}), msgs)
    assert set(result.states.values()) == {"delivered"}
    assert [r.json() for r in fake.requests] == msgs
    assert fake.violations == []
    no_secret(KEY, result.attempts)


def test_a_throttle_slows_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"message": "slow down"}, headers={"Retry-After": "0.1"}))
    result = harness.run(harness.worker("resci", {"api_key": KEY, "endpoint": fake.url + PATH}),
                         [audience_track(1)])
    assert [(a[2], a[3]) for a in result.attempts] == [("retry", "429"), ("ok", None)]


def test_a_bad_key_pauses(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("resci", {"api_key": "wrong-resci-key", "endpoint": fake.url + PATH}, auth_pause_s=60)
    result = harness.run(worker, [audience_track(1)], include_retries=False)
    assert result.codes == {"m1": "401"} and worker.paused
    no_secret("wrong-resci-key", result.attempts)


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="endpoint"):
        ResciSettings.model_validate({"api_key": "k"})
    with pytest.raises(ValidationError, match="api_key"):
        ResciSettings.model_validate({"endpoint": "https://resci.example/ingest"})
