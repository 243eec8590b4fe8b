"""Kinesis through the real delivery worker to moto in server mode (behind a failing proxy)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.kinesis import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    create_stream,
    decode,
    kinesis_proxy,
    moto_server,
    read_stream,
)
from tests.destinations.fakes.server import Answer, FakeVendor
from tests.destinations.harness import Harness
from tests.destinations.vendors._engage_messages import (
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
from traitsync.destinations.vendors.kinesis import DESTINATION, KinesisSettings

STREAM = "engage-changes"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        create_stream(url, STREAM)
        yield url


@pytest.fixture
def failures() -> list[dict[int, str]]:
    return []


@pytest.fixture
def proxy(moto: str, failures: list[dict[int, str]]) -> Iterator[FakeVendor]:
    fake = kinesis_proxy(moto, failures).start()
    yield fake
    fake.stop()


def settings(url: str, **extra: object) -> dict[str, object]:
    return {"awsRegion": REGION, "streamName": STREAM, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
            "endpoint": url, **extra}


def test_registered() -> None:
    assert get_destination("kinesis") is DESTINATION and DESTINATION.max_batch == 500


def test_entry_exit_and_trait_land_in_the_stream(harness: Harness, moto: str, proxy: FakeVendor) -> None:
    before = len(read_stream(moto, STREAM))
    msgs = [audience_identify(1, user_id="k1"), audience_track(2, user_id="k2"),
            audience_track(3, member=False, user_id="k3"), trait_track(4, user_id="k4")]
    result = harness.run(harness.worker("kinesis", settings(proxy.url)), msgs)
    assert set(result.states.values()) == {"delivered"}
    stored = read_stream(moto, STREAM)[before:]
    assert stored == [(m["userId"], m) for m in msgs]  # the Segment message itself, keyed by userId
    sent = proxy.requests[0]
    assert sent.header("X-Amz-Target") == "Kinesis_20131202.PutRecords"
    assert sent.header("Content-Type") == "application/x-amz-json-1.1"
    assert (sent.header("Authorization") or "").startswith(
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/") and f"/{REGION}/kinesis/aws4_request" in (
        sent.header("Authorization") or "")
    assert [decode(r["Data"]) for r in sent.json()["Records"]] == msgs
    assert proxy.violations == []
    no_secret(SECRET_KEY, result.attempts)


def test_failed_records_alone_are_retried(harness: Harness, moto: str, proxy: FakeVendor,
                                          failures: list[dict[int, str]]) -> None:
    failures.append({1: "ProvisionedThroughputExceededException", 3: "InternalFailure"})
    before = len(read_stream(moto, STREAM))
    msgs = [audience_track(i, user_id=f"p{i}") for i in range(5)]
    result = harness.run(harness.worker("kinesis", settings(proxy.url)), msgs)
    assert set(result.states.values()) == {"delivered"}
    retried = sorted((mid, code) for mid, attempt, outcome, code, _ in result.attempts if outcome == "retry")
    assert retried == [("m1", "ProvisionedThroughputExceededException"), ("m3", "InternalFailure")]
    assert [len(r.json()["Records"]) for r in proxy.requests] == [5, 2] or \
        [len(r.json()["Records"]) for r in proxy.requests] == [5, 1, 1]
    stored = [key for key, _ in read_stream(moto, STREAM)[before:]]
    assert sorted(stored) == [f"p{i}" for i in range(5)]  # each exactly once


def test_a_throttled_call_slows_down_and_loses_nothing(harness: Harness, moto: str, proxy: FakeVendor) -> None:
    proxy.script.append(Answer(400, {"__type": "com.amazonaws#LimitExceededException", "message": "slow down"}))
    before = len(read_stream(moto, STREAM))
    result = harness.run(harness.worker("kinesis", settings(proxy.url)), [audience_track(1, user_id="t1")])
    assert result.states == {"m1": "delivered"}
    assert [(a[2], a[3]) for a in result.attempts] == [("retry", "LimitExceededException"), ("ok", None)]
    assert [k for k, _ in read_stream(moto, STREAM)[before:]] == ["t1"]


def test_a_missing_stream_pauses_the_destination(harness: Harness, moto: str) -> None:
    worker = harness.worker("kinesis", settings(moto, streamName="no-such-stream"), auth_pause_s=60)
    result = harness.run(worker, [audience_track(1)], include_retries=False)
    assert result.codes == {"m1": "ResourceNotFoundException"} and worker.paused
    assert result.states == {"m1": "retry_wait"}


def test_check_describes_the_stream(moto: str) -> None:
    good = DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(moto)))
    assert check_destination(good).ok
    bad = DeliveryTarget.simple("d", DESTINATION, DESTINATION.parse_settings(settings(moto, streamName="nope")))
    result = check_destination(bad)
    assert not result.ok and SECRET_KEY not in json.dumps(result.requests)


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="streamName"):
        KinesisSettings.model_validate({"awsRegion": REGION})
    with pytest.raises(ValidationError, match="awsRegion"):
        KinesisSettings.model_validate({"awsRegion": "Virginia", "streamName": "s"})
    with pytest.raises(ValidationError, match="secret_access_key"):
        KinesisSettings.model_validate({"awsRegion": REGION, "streamName": "s", "access_key_id": "AKID"})


def test_golden_caps_split_requests_and_sign_each() -> None:
    s = KinesisSettings.model_validate(settings("https://kinesis.test"))
    assert DESTINATION.build is not None
    many = DESTINATION.build(items(DESTINATION, [audience_track(i, user_id=f"u{i}") for i in range(501)]), s)
    assert [len(r.indices) for r in many] == [500, 1]
    big = audience_track(1)
    big["properties"]["blob"] = "x" * 900_000
    sized = DESTINATION.build(items(DESTINATION, [big, big, big, big, big, big]), s)
    assert [len(r.indices) for r in sized] == [5, 1]  # 5 MiB of data (before base64) per call
    answer = {"FailedRecordCount": 1, "Records": [{"SequenceNumber": "1", "ShardId": "s"},
                                                  {"ErrorCode": "ValidationException", "ErrorMessage": "bad"}]}
    outcomes, sent = run_exchange(DESTINATION.start(items(DESTINATION, [audience_track(1), audience_track(2)]), s),
                                  lambda _r: Response(200, body=json.dumps(answer).encode()))
    assert outcomes == [Outcome.ok(), Outcome.drop("ValidationException", "bad")]
    assert sent[0].url == "https://kinesis.test/"
    from traitsync.errors import InvalidPayload
    huge = audience_track(1)
    huge["properties"]["blob"] = "x" * (1024 * 1024)
    with pytest.raises(InvalidPayload, match="1 MiB"):
        DESTINATION.build(items(DESTINATION, [huge]), s)
