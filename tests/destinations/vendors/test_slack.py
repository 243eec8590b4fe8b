"""Slack through the real delivery worker to a local incoming-webhook fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.fakes.slack import PATH, slack_fake
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
    audience_identify,
    audience_track,
    items,
    no_secret,
    trait_track,
)
from traitsync.destinations import get_destination
from traitsync.destinations.vendors.slack import DESTINATION, SlackSettings, message_text


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = slack_fake().start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor, **extra: object) -> dict[str, object]:
    return {"endpoint": fake.url + PATH, **extra}


def test_registered() -> None:
    assert get_destination("slack") is DESTINATION and DESTINATION.default_rate == 1


def test_entry_exit_and_trait_become_messages(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("slack", settings(fake, channel="#growth", send_traits=True))
    result = harness.run(worker, [audience_track(1), audience_track(2, member=False), audience_identify(3),
                                  trait_track(4)])
    assert set(result.states.values()) == {"delivered"}
    assert [r.json() for r in fake.requests] == [
        {"text": "ann@example.com entered audience *vip_users*", "channel": "#growth"},
        {"text": "ann@example.com exited audience *vip_users*", "channel": "#growth"},
        {"text": "ann@example.com entered audience *vip_users*", "channel": "#growth"},
        {"text": "ann@example.com: *ltv_180d* is now 450.0", "channel": "#growth"},
    ]
    assert fake.violations == []


def test_trait_changes_are_not_sent_by_default(harness: Harness, fake: FakeVendor) -> None:
    result = harness.run(harness.worker("slack", settings(fake)), [trait_track(1)])
    assert result.states == {"m1": "dead"} and result.codes == {"m1": "NOT_AN_AUDIENCE_CHANGE"}
    assert fake.requests == []


def test_a_throttle_waits_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, "rate_limited", headers={"Retry-After": "0.2"}))
    result = harness.run(harness.worker("slack", settings(fake)), [audience_track(1)])
    assert result.states == {"m1": "delivered"}
    assert fake.requests[1].at - fake.requests[0].at >= 0.19


def test_a_removed_webhook_pauses_the_destination(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(404, "no_service"))
    worker = harness.worker("slack", settings(fake), auth_pause_s=60)
    result = harness.run(worker, [audience_track(1)], include_retries=False)
    assert result.codes == {"m1": "no_service"} and worker.paused


def test_the_webhook_url_is_a_secret(harness: Harness) -> None:
    url = "https://hooks.slack.com/services/T1/B2/verysecretpart"
    s = SlackSettings.model_validate({"url": url})
    assert url in s.secrets() and url not in repr(s)
    no_secret(url, repr(s))


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="url"):
        SlackSettings.model_validate({})
    with pytest.raises(ValidationError, match="url"):
        SlackSettings.model_validate({"url": "https://example.com/hook"})
    with pytest.raises(ValidationError, match="entered_template"):
        SlackSettings.model_validate({"url": "https://hooks.slack.com/services/x", "entered_template": "{nope}"})


def test_golden_templates() -> None:
    s = SlackSettings.model_validate({"url": "https://hooks.slack.com/services/x",
                                      "exited_template": "bye {user} from {audience}"})
    [exit_] = items(DESTINATION, [audience_identify(1, member=False, email=None)])
    assert message_text(exit_, s) == "bye user-1 from vip_users"
