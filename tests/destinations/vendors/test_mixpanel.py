"""Mixpanel through the real delivery worker to a local ingestion fake, plus golden builds."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.mixpanel import mixpanel_fake
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
from traitsync.destinations.vendors.mixpanel import DESTINATION, MixpanelSettings

TOKEN, SECRET = "mp-project-token-123", "mp-api-secret-456"


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = mixpanel_fake(TOKEN, SECRET).start()
    yield vendor
    vendor.stop()


def settings(fake: FakeVendor, **extra: object) -> dict[str, object]:
    return {"projectToken": TOKEN, "apiSecret": SECRET, "endpoint": fake.url, **extra}


def test_registered() -> None:
    assert get_destination("mixpanel") is DESTINATION and DESTINATION.max_batch == 2000


def test_entry_exit_and_trait_arrive_as_mixpanel_expects(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("mixpanel", settings(fake), batch_size=1)
    result = harness.run(worker, [audience_track(1), audience_track(2, member=False), trait_track(3),
                                  audience_identify(4), trait_identify(5)])
    assert set(result.states.values()) == {"delivered"}
    imports = fake.on("POST", "/import")
    assert [r.json() for r in imports] == [
        [{"event": "Audience Entered", "properties": {"audience_key": "vip_users", "vip_users": True,
                                                      "time": TS_MS, "distinct_id": "user-1", "$insert_id": "m1"}}],
        [{"event": "Audience Exited", "properties": {"audience_key": "vip_users", "vip_users": False,
                                                     "time": TS_MS, "distinct_id": "user-1", "$insert_id": "m2"}}],
        [{"event": "Trait Computed", "properties": {"trait_key": "ltv_180d", "ltv_180d": 450.0,
                                                    "time": TS_MS, "distinct_id": "user-1", "$insert_id": "m3"}}],
    ]
    assert imports[0].header("Authorization") == "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()
    assert [r.json() for r in fake.on("POST", "/engage")] == [
        [{"$token": TOKEN, "$distinct_id": "user-1", "$set": {"vip_users": True, "email": "ann@example.com"}}],
        [{"$token": TOKEN, "$distinct_id": "user-1", "$set": {"ltv_180d": 450.0, "email": "ann@example.com"}}],
    ]
    assert fake.violations == []
    no_secret(SECRET, result.attempts)
    no_secret(TOKEN, result.attempts)


def test_failed_records_alone_are_dropped(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(400, {"code": 400, "status": "Bad Request", "num_records_imported": 2,
                                    "failed_records": [{"index": 1, "$insert_id": "m1", "field": "properties.time",
                                                        "message": "too old"}]}))
    result = harness.run(harness.worker("mixpanel", settings(fake)),
                         [audience_track(i, user_id=f"u{i}") for i in range(3)])
    assert result.states == {"m0": "delivered", "m1": "dead", "m2": "delivered"}
    assert len(fake.requests) == 1


def test_a_throttle_slows_and_loses_nothing(harness: Harness, fake: FakeVendor) -> None:
    fake.script.append(Answer(429, {"code": 429, "error": "rate limited"}, headers={"Retry-After": "0.1"}))
    result = harness.run(harness.worker("mixpanel", settings(fake)), [audience_track(1)])
    assert [(a[2], a[3]) for a in result.attempts] == [("retry", "429"), ("ok", None)]


def test_a_bad_secret_pauses(harness: Harness, fake: FakeVendor) -> None:
    worker = harness.worker("mixpanel", settings(fake, apiSecret="wrong-secret-789"), auth_pause_s=60)
    result = harness.run(worker, [audience_track(1)], include_retries=False)
    assert result.codes == {"m1": "401"} and worker.paused
    no_secret("wrong-secret-789", result.attempts)


def test_a_refused_engage_batch_is_dropped(harness: Harness, fake: FakeVendor) -> None:
    result = harness.run(harness.worker("mixpanel", settings(fake, projectToken="other-token")),
                         [audience_identify(1)])
    assert result.states == {"m1": "dead"} and result.codes == {"m1": "ENGAGE_REJECTED"}


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="projectToken"):
        MixpanelSettings.model_validate({})
    with pytest.raises(ValidationError, match="projectId"):
        MixpanelSettings.model_validate({"projectToken": "t", "serviceAccountUsername": "sa",
                                         "serviceAccountSecret": "s"})
    with pytest.raises(ValidationError, match="apiRegion"):
        MixpanelSettings.model_validate({"projectToken": "t", "apiRegion": "APAC"})


def test_golden_service_account_insert_ids_and_batches() -> None:
    s = MixpanelSettings.model_validate({"projectToken": "t", "serviceAccountUsername": "sa.user",
                                         "serviceAccountSecret": "sa-secret", "projectId": "42", "apiRegion": "EU"})
    msg = audience_track(1)
    msg["messageId"] = "personas_2f1b7c9e-...:with/odd chars and far too long to be an insert id"
    assert DESTINATION.build is not None
    [request] = DESTINATION.build(items(DESTINATION, [msg]), s)
    assert request.url == "https://api-eu.mixpanel.com/import?strict=1&project_id=42"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"sa.user:sa-secret").decode()
    assert len(json.loads(request.body)[0]["properties"]["$insert_id"]) == 32
    many = DESTINATION.build(items(DESTINATION, [audience_track(i) for i in range(2001)]), s)
    assert [len(r.indices) for r in many] == [2000, 1]
    from traitsync.errors import InvalidPayload
    with pytest.raises(InvalidPayload, match="distinct_id"):
        DESTINATION.build(items(DESTINATION, [audience_track(1, user_id="undefined")]), s)
