"""Amazon Kinesis Data Streams: every change as one record, through ``PutRecords``.

Each record's ``Data`` is the JSON of the mapped ``payload`` (by default the Segment message
itself, as Segment's Kinesis destination sends it) and its ``PartitionKey`` the profile's
``userId`` (else ``anonymousId``, else the message id), so one profile's changes land on one
shard in order. Requests are SigV4-signed with botocore (``_aws.py``).

Caps (Kinesis's own): 500 records and 5 MiB per ``PutRecords`` call, 1 MiB per record (data
bytes before base64, plus partition key); a batch over either cap is split, a record over 1 MiB is dropped alone
(``RECORD_TOO_LARGE``). A shard takes 1,000 records or 1 MiB a second; the default rate of 20
calls/second suits small streams, raise ``rate_limit`` with the shard count.

Answers: 200 ``{FailedRecordCount, Records:[{SequenceNumber, ShardId} | {ErrorCode, ErrorMessage}]}``
aligned with the request, so only the failed records are retried
(``ProvisionedThroughputExceededException``, ``InternalFailure``) or dropped; a whole-call error
(``{__type, message}``) applies to every record: throttles retry, bad credentials and a missing
stream pause the destination.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from traitsync.destinations.base import Destination, Item, Outcome, Request, Response, dumps
from traitsync.destinations.vendors._aws import AwsSettings, call_outcome, item_outcome, signed
from traitsync.destinations.vendors._engage import b64, invalid, size_groups, text

TARGET = "Kinesis_20131202.PutRecords"
MAX_RECORDS = 500
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024


class KinesisSettings(AwsSettings):
    streamName: str | None = Field(default=None, description="The stream to write to.")  # Segment's name
    streamArn: str | None = Field(default=None, description="Or the stream's ARN (cross-account streams).")

    @model_validator(mode="after")
    def _a_stream(self) -> KinesisSettings:
        if not (self.streamName or self.streamArn):
            raise ValueError("streamName (or streamArn) is required")
        return self


DEFAULT_MAPPINGS: dict[str, Any] = {
    "partitionKey": {"@first": ["$.userId", "$.anonymousId", "$.messageId"]},
    "payload": "$",
}


def record(item: Item) -> tuple[dict[str, str], int]:
    """The record and the size Kinesis counts against its caps (data bytes plus partition key)."""
    key = text(item.fields.get("partitionKey")) or text(item.message.get("messageId"))
    if key is None:
        raise invalid("a Kinesis record needs a partition key", code="MISSING_PARTITION_KEY")
    key = key[:256]
    data = dumps(item.fields.get("payload", item.message))
    size = len(data) + len(key.encode())
    if size > MAX_RECORD_BYTES:
        raise invalid(f"record of {len(data)} bytes exceeds Kinesis's 1 MiB", code="RECORD_TOO_LARGE")
    return {"Data": b64(data), "PartitionKey": key}, size


def _stream(settings: KinesisSettings) -> dict[str, str]:
    return {"StreamARN": settings.streamArn} if settings.streamArn else {"StreamName": settings.streamName or ""}


def build(items: Sequence[Item], settings: KinesisSettings) -> list[Request]:
    built = [record(item) for item in items]
    stream = _stream(settings)
    return [signed(settings, "kinesis", TARGET, {**stream, "Records": [built[i][0] for i in group]}, group)
            for group in size_groups(range(len(built)), lambda i: built[i][1] - 1, max_items=MAX_RECORDS,
                                     max_bytes=MAX_REQUEST_BYTES)]


def per_entry(response: Response, count: int, key: str) -> list[Outcome]:
    """Outcomes from an AWS answer that lists one result per record/entry under ``key``."""
    if response.status != 200 or response.error is not None:
        return [call_outcome(response)] * count
    data = response.json()
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list) or len(entries) != count:
        return [Outcome.retry(code="UNEXPECTED_ANSWER")] * count
    out: list[Outcome] = []
    for entry in entries:
        code = entry.get("ErrorCode") if isinstance(entry, dict) else None
        out.append(item_outcome(str(code), str(entry.get("ErrorMessage") or "")[:200] or None) if code
                   else Outcome.ok())
    return out


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    return per_entry(response, len(items), "Records")


def check(settings: KinesisSettings, _token: object) -> Request:
    """``DescribeStreamSummary``: proves credentials, region and stream in one read."""
    return signed(settings, "kinesis", "Kinesis_20131202.DescribeStreamSummary", _stream(settings), (),
                  purpose="check")


DESTINATION: Destination[KinesisSettings] = Destination(
    name="Amazon Kinesis",
    slug="kinesis",
    settings_model=KinesisSettings,
    build=build,
    classify=classify,
    default_rate=20.0,
    max_batch=MAX_RECORDS,
    event_types=frozenset({"identify", "track", "group"}),
    default_mappings=DEFAULT_MAPPINGS,
    custom_fields=False,
    check=check,
    description="Amazon Kinesis Data Streams PutRecords (500 records / 5 MiB per call), SigV4 via botocore.",
)
