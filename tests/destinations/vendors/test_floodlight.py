"""DoubleClick Floodlight through the real delivery worker to a local activity-server fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.floodlight import floodlight_fake
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import audience_track, items, trait_track
from traitsync.destinations import get_destination
from traitsync.destinations.vendors.floodlight import DESTINATION, FloodlightSettings

IDFA = "38400000-8cf0-11bd-b23e-10b96e40000d"
UA = "MyApp/3.1 (iPhone; iOS 17.2; Scale/3.00)"


def mobile(msg: dict[str, Any], tracking: bool | None = True) -> dict[str, Any]:
    msg["context"]["device"] = {"advertisingId": IDFA, **({} if tracking is None else
                                                         {"adTrackingEnabled": tracking})}
    msg["context"]["userAgent"] = UA
    return msg


def settings(fake: FakeVendor, **extra: object) -> dict[str, object]:
    return {"advertiserId": "3528935", "activityTag": "audie0", "groupTag": "engag0", "endpoint": fake.url,
            "conversionEvents": [
                {"eventName": "Audience Entered", "floodlightActivityTag": "vipin0",
                 "customVariables": {"u1": "audience_key"}},
                {"eventName": "Audience Exited", "floodlightActivityTag": "vipout0"},
                {"eventName": "Trait Computed", "salesTag": True, "customVariables": {"u2": "ltv_180d"}}],
            **extra}


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = floodlight_fake().start()
    yield vendor
    vendor.stop()


def test_registered() -> None:
    assert get_destination("floodlight") is DESTINATION and DESTINATION.event_types == {"track"}


def test_entry_exit_and_trait_fire_their_activities(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("floodlight", settings(fake, npa=True))
    msgs = [mobile(audience_track(1)), mobile(audience_track(2, member=False), tracking=False),
            mobile(trait_track(3), tracking=None)]
    result = harness.run(worker, msgs)
    assert set(result.states.values()) == {"delivered"}
    assert [r.path for r in fake.requests] == [
        f"/ddm/activity/src=3528935;cat=vipin0;type=engag0;dc_rdid={IDFA};ord=m1;dc_lat=0;npa=1;u1=vip_users",
        f"/ddm/activity/src=3528935;cat=vipout0;type=engag0;dc_rdid={IDFA};ord=m2;dc_lat=1;npa=1",
        f"/ddm/activity/src=3528935;cat=audie0;type=engag0;dc_rdid={IDFA};qty=1;ord=m3;npa=1;u2=450.0",
    ]
    assert all(r.header("User-Agent") == UA for r in fake.requests)
    assert fake.violations == []


def test_unmapped_events_and_missing_device_ids_are_dropped(harness: Harness, fake: FakeVendor) -> None:
    other = mobile(audience_track(1))
    other["event"] = "Order Completed"
    result = harness.run(harness.worker("floodlight", settings(fake)), [other, audience_track(2)])
    assert result.codes == {"m1": "NO_MATCHING_CONVERSION_EVENT", "m2": "MISSING_ADVERTISING_ID"}
    assert fake.requests == []


def test_a_throttle_slows_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, "slow", headers={"Retry-After": "0.1"}))
    result = harness.run(harness.worker("floodlight", settings(fake)), [mobile(audience_track(1))])
    assert [(a[2], a[3]) for a in result.attempts] == [("retry", "429"), ("ok", None)]


def test_a_redirect_counts_as_recorded(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(302, "", headers={"Location": "https://ad.doubleclick.net/x"}))
    result = harness.run(harness.worker("floodlight", settings(fake)), [mobile(audience_track(1))])
    assert result.states == {"m1": "delivered"}


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="advertiserId"):
        FloodlightSettings.model_validate({"advertiserId": "abc", "conversionEvents": [{"eventName": "x"}]})
    with pytest.raises(ValidationError, match="conversionEvents"):
        FloodlightSettings.model_validate({"advertiserId": "1"})
    with pytest.raises(ValidationError, match="customVariables"):
        FloodlightSettings.model_validate({"advertiserId": "1", "conversionEvents": [
            {"eventName": "x", "customVariables": {"v1": "a"}}]})


def test_golden_values_are_escaped() -> None:
    s = FloodlightSettings.model_validate({"advertiserId": "1", "activityTag": "a", "groupTag": "g",
                                           "conversionEvents": [{"eventName": "Audience Entered",
                                                                 "customVariables": {"u1": "audience_key"}}]})
    msg = mobile(audience_track(1, key="a;b#c d"))
    assert DESTINATION.build is not None
    [request] = DESTINATION.build(items(DESTINATION, [msg]), s)
    assert request.method == "GET" and request.url.startswith("https://ad.doubleclick.net/ddm/activity/src=1;")
    assert request.url.endswith(";u1=a%3Bb%23c%20d")
