"""Mailchimp through the real delivery worker to a local Marketing API fake, plus golden exchanges."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.mailchimp import mailchimp_fake
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
from traitsync.delivery.check import check_destination
from traitsync.delivery.target import DeliveryTarget
from traitsync.destinations import get_destination
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate
from traitsync.destinations.vendors.mailchimp import DESTINATION, MailchimpSettings

KEY, LIST = "0123456789abcdef0123456789abcdef-us6", "a1b2c3"
HASH = hashlib.md5(b"ann@example.com").hexdigest()


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = mailchimp_fake(KEY, LIST).start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor, **extra: object) -> dict[str, object]:
    return {"apiKey": KEY, "listId": LIST, "endpoint": fake.url, **extra}


def test_registered_with_the_seeds_cap() -> None:
    assert get_destination("mailchimp") is DESTINATION and default_rate(DESTINATION) == 10


def test_entry_exit_and_trait_arrive_as_mailchimp_expects(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("mailchimp", settings(fake, merge_fields={"ltv_180d": "LTV"}))
    result = harness.run(worker, [audience_track(1, email="Ann@Example.com"), audience_identify(2),
                                  audience_identify(3, member=False), trait_identify(4), trait_track(5)])
    assert set(result.states.values()) == {"delivered"}
    member = f"/3.0/lists/{LIST}/members/{HASH}"
    assert [(r.method, r.path, r.json()) for r in fake.requests] == [
        # the event finds no member yet: upsert, then the event again
        ("POST", member + "/events", {"name": "Audience_Entered", "occurred_at": TS,
                                      "properties": {"audience_key": "vip_users", "vip_users": "true"}}),
        ("PUT", member, {"email_address": "Ann@Example.com", "status_if_new": "subscribed"}),
        ("POST", member + "/events", {"name": "Audience_Entered", "occurred_at": TS,
                                      "properties": {"audience_key": "vip_users", "vip_users": "true"}}),
        ("PUT", member, {"email_address": "ann@example.com", "status_if_new": "subscribed"}),
        ("POST", member + "/tags", {"tags": [{"name": "vip_users", "status": "active"}]}),
        ("PUT", member, {"email_address": "ann@example.com", "status_if_new": "subscribed"}),
        ("POST", member + "/tags", {"tags": [{"name": "vip_users", "status": "inactive"}]}),
        ("PUT", member, {"email_address": "ann@example.com", "status_if_new": "subscribed",
                         "merge_fields": {"LTV": 450.0}}),
        ("POST", member + "/events", {"name": "Trait_Computed", "occurred_at": TS,
                                      "properties": {"trait_key": "ltv_180d", "ltv_180d": "450.0"}}),
    ]
    assert fake.violations == []
    no_secret(KEY, result.attempts)


def test_a_throttle_slows_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"title": "Too Many Requests", "status": 429}, headers={"Retry-After": "0.1"}))
    result = harness.run(harness.worker("mailchimp", settings(fake)), [audience_identify(1)])
    assert result.states == {"m1": "delivered"}
    assert [(a[2], a[3]) for a in result.attempts] == [("retry", "429"), ("ok", None)]


def test_a_refused_member_is_dropped_with_mailchimps_title(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(400, {"title": "Member In Compliance State", "status": 400, "detail": "x"}))
    result = harness.run(harness.worker("mailchimp", settings(fake)), [audience_identify(1)])
    assert result.states == {"m1": "dead"} and result.codes == {"m1": "Member_In_Compliance_State"}


def test_a_bad_key_pauses_and_check_says_so(harness: Harness, fake: FakeVendor) -> None:
    bad = "ffffffffffffffffffffffffffffffff-us6"
    worker = harness.worker("mailchimp", settings(fake, apiKey=bad), auth_pause_s=60)
    result = harness.run(worker, [audience_identify(1)], include_retries=False)
    assert result.codes == {"m1": "401"} and worker.paused
    no_secret(bad, result.attempts)
    assert check_destination(DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(fake)))).ok


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="apiKey"):
        MailchimpSettings.model_validate({"apiKey": "nodatacenter", "listId": "l"})
    with pytest.raises(ValidationError, match="listId"):
        MailchimpSettings.model_validate({"apiKey": KEY})
    with pytest.raises(ValidationError, match="merge_fields"):
        MailchimpSettings.model_validate({"apiKey": KEY, "listId": "l", "merge_fields": {"x": "lower"}})


def test_golden_host_from_the_key_and_no_email() -> None:
    s = MailchimpSettings(apiKey=KEY, listId=LIST)  # type: ignore[arg-type]
    outcomes, sent = run_exchange(DESTINATION.start(items(DESTINATION, [audience_identify(1)]), s),
                                  lambda _r: Response(200, body=b"{}"))
    assert [r.url for r in sent] == [f"https://us6.api.mailchimp.com/3.0/lists/{LIST}/members/{HASH}",
                                     f"https://us6.api.mailchimp.com/3.0/lists/{LIST}/members/{HASH}/tags"]
    assert outcomes == [Outcome.ok()]
    from traitsync.errors import InvalidPayload
    with pytest.raises(InvalidPayload, match="email"):
        run_exchange(DESTINATION.start(items(DESTINATION, [audience_identify(1, email=None)]), s),
                     lambda _r: Response(200))
