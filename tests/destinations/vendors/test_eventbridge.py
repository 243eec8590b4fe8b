"""EventBridge through the real delivery worker to moto in server mode (behind a failing proxy)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.eventbridge import create_bus, eventbridge_proxy, read_events
from tests.destinations.fakes.kinesis import ACCESS_KEY, REGION, SECRET_KEY, moto_server
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
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.vendors.eventbridge import DESTINATION, EventBridgeSettings

BUS = "engage"


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[str, str]]:
    with moto_server() as url:
        yield url, create_bus(url, BUS, "traitsync")


@pytest.fixture
def failures() -> list[dict[int, str]]:
    return []


@pytest.fixture
def proxy(moto: tuple[str, str], failures: list[dict[int, str]]) -> Iterator[FakeVendor]:
    fake = eventbridge_proxy(moto[0], failures).start()
    read_events(*moto)  # start each test with an empty copy queue
    yield fake
    fake.stop()


def settings(url: str, **extra: object) -> dict[str, object]:
    return {"awsRegion": REGION, "eventBusName": BUS, "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY, "endpoint": url, **extra}


def test_registered() -> None:
    assert get_destination("eventbridge") is DESTINATION and DESTINATION.max_batch == 10


def test_entry_exit_and_trait_reach_the_bus(harness: Harness, moto: tuple[str, str], proxy: FakeVendor) -> None:
    msgs = [audience_identify(1, user_id="e1"), audience_track(2, user_id="e2"),
            audience_track(3, member=False, user_id="e3"), trait_track(4, user_id="e4")]
    result = harness.run(harness.worker("eventbridge", settings(proxy.url)), msgs)
    assert set(result.states.values()) == {"delivered"}
    got = sorted(read_events(*moto), key=lambda e: e["detail"]["messageId"])
    assert [(e["source"], e["detail-type"], e["detail"]) for e in got] == [
        ("traitsync", "identify", msgs[0]), ("traitsync", "Audience Entered", msgs[1]),
        ("traitsync", "Audience Exited", msgs[2]), ("traitsync", "Trait Computed", msgs[3])]
    entry = proxy.requests[0].json()["Entries"][1]
    assert entry == {"Time": TS_S, "Source": "traitsync", "DetailType": "Audience Entered",
                     "Detail": json.dumps(msgs[1], separators=(",", ":")), "EventBusName": BUS}
    assert proxy.requests[0].header("X-Amz-Target") == "AWSEvents.PutEvents"
    assert f"/{REGION}/events/aws4_request" in (proxy.requests[0].header("Authorization") or "")
    assert proxy.violations == []
    no_secret(SECRET_KEY, result.attempts)


def test_failed_entries_alone_are_retried(harness: Harness, moto: tuple[str, str], proxy: FakeVendor,
                                          failures: list[dict[int, str]]) -> None:
    failures.append({0: "ThrottlingException", 2: "MalformedDetail"})
    msgs = [audience_track(i, user_id=f"f{i}") for i in range(4)]
    result = harness.run(harness.worker("eventbridge", settings(proxy.url)), msgs)
    assert result.states == {"m0": "delivered", "m1": "delivered", "m2": "dead", "m3": "delivered"}
    assert result.codes["m2"] == "MalformedDetail"
    assert [len(r.json()["Entries"]) for r in proxy.requests] == [4, 1]
    assert sorted(e["detail"]["messageId"] for e in read_events(*moto)) == ["m0", "m1", "m3"]


def test_a_throttled_call_is_retried(harness: Harness, moto: tuple[str, str], proxy: FakeVendor) -> None:
    proxy.script.append(Answer(400, {"__type": "ThrottlingException", "message": "Rate exceeded"}))
    result = harness.run(harness.worker("eventbridge", settings(proxy.url)), [audience_track(1)])
    assert [(a[2], a[3]) for a in result.attempts] == [("retry", "ThrottlingException"), ("ok", None)]
    assert len(read_events(*moto)) == 1


def test_check_describes_the_bus(moto: tuple[str, str]) -> None:
    good = DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(moto[0])))
    assert check_destination(good).ok
    bad = DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(moto[0], eventBusName="no")))
    assert not check_destination(bad).ok


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="awsRegion"):
        EventBridgeSettings.model_validate({})
    with pytest.raises(ValidationError, match="source"):
        EventBridgeSettings.model_validate({"awsRegion": REGION, "source": "aws.events"})


def test_golden_ten_entries_per_call() -> None:
    s = EventBridgeSettings.model_validate(settings("https://events.test"))
    assert DESTINATION.build is not None
    requests = DESTINATION.build(items(DESTINATION, [audience_track(i) for i in range(25)]), s)
    assert [len(r.indices) for r in requests] == [10, 10, 5]
    answer = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"},
                                                 {"EventId": "e"}]}
    outcomes, _ = run_exchange(DESTINATION.start(items(DESTINATION, [audience_track(1), audience_track(2)]), s),
                               lambda _r: Response(200, body=json.dumps(answer).encode()))
    assert outcomes == [Outcome.retry(code="InternalFailure", message="x"), Outcome.ok()]
