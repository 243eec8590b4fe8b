"""Amazon EventBridge: every change as one event on an event bus, through ``PutEvents``.

Each entry carries ``Source`` (setting ``source``, default ``traitsync``), ``DetailType`` (the
track event name, or the message type for identify), ``Detail`` (the JSON of the mapped
``detail``, by default the Segment message), ``Time`` (the message timestamp, epoch seconds) and
``EventBusName``. Requests are SigV4-signed with botocore (``_aws.py``).

Caps (EventBridge's own): 10 entries per call and 256 KB per call, counting each entry's
Source, DetailType, Detail, Resources and 14 bytes for Time; a batch over either is split and
an entry over 256 KB alone is dropped (``ENTRY_TOO_LARGE``).

Answers: 200 ``{FailedEntryCount, Entries:[{EventId} | {ErrorCode, ErrorMessage}]}`` aligned
with the request: only failed entries are retried (``ThrottlingException``,
``InternalFailure``) or dropped; a whole-call error applies to every entry (throttles retry,
refused credentials or a missing bus pause the destination).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from traitsync.destinations.base import Destination, Item, Outcome, Request, Response, dumps
from traitsync.destinations.vendors._aws import AwsSettings, signed
from traitsync.destinations.vendors._engage import epoch_ms, event_time, invalid, size_groups, text
from traitsync.destinations.vendors.kinesis import per_entry

TARGET = "AWSEvents.PutEvents"
MAX_ENTRIES = 10
MAX_CALL_BYTES = 256 * 1024


class EventBridgeSettings(AwsSettings):
    eventBusName: str = Field(default="default", description="The event bus name or ARN.", min_length=1)
    source: str = Field(default="traitsync", description="The events' Source (not starting with aws.).",
                        min_length=1, max_length=256)

    @field_validator("source")
    @classmethod
    def _not_aws(cls, value: str) -> str:
        if value.startswith("aws."):
            raise ValueError("source must not start with 'aws.' (reserved for AWS services)")
        return value


DEFAULT_MAPPINGS: dict[str, Any] = {
    "detailType": {"@first": ["$.event", "$.type"]},
    "detail": "$",
    "resources": [],
}


def entry(item: Item, settings: EventBridgeSettings) -> tuple[dict[str, Any], int]:
    detail_type = text(item.fields.get("detailType")) or item.type or "traitsync"
    detail = dumps(item.fields.get("detail", item.message)).decode("utf-8")
    when = epoch_ms(event_time(item))
    # AWS JSON 1.1 timestamps are epoch seconds (numbers), as botocore sends them.
    out: dict[str, Any] = {"Time": when // 1000 if when % 1000 == 0 else when / 1000, "Source": settings.source,
                           "DetailType": detail_type[:128],
                           "Detail": detail, "EventBusName": settings.eventBusName}
    resources = item.fields.get("resources")
    if isinstance(resources, list) and resources:
        out["Resources"] = [str(r) for r in resources]
    size = 14 + sum(len(str(out[k]).encode()) for k in ("Source", "DetailType", "Detail")) + sum(
        len(r.encode()) for r in out.get("Resources", []))
    if size > MAX_CALL_BYTES:
        raise invalid(f"event of {size} bytes exceeds EventBridge's 256 KB", code="ENTRY_TOO_LARGE")
    return out, size


def build(items: Sequence[Item], settings: EventBridgeSettings) -> list[Request]:
    built = [entry(item, settings) for item in items]
    return [signed(settings, "events", TARGET, {"Entries": [built[i][0] for i in group]}, group)
            for group in size_groups(range(len(built)), lambda i: built[i][1] - 1, max_items=MAX_ENTRIES,
                                     max_bytes=MAX_CALL_BYTES)]


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    return per_entry(response, len(items), "Entries")


def check(settings: EventBridgeSettings, _token: object) -> Request:
    """``DescribeEventBus``: proves credentials, region and bus."""
    return signed(settings, "events", "AWSEvents.DescribeEventBus", {"Name": settings.eventBusName}, (),
                  purpose="check")


DESTINATION: Destination[EventBridgeSettings] = Destination(
    name="Amazon EventBridge",
    slug="eventbridge",
    settings_model=EventBridgeSettings,
    build=build,
    classify=classify,
    default_rate=50.0,
    max_batch=MAX_ENTRIES,
    event_types=frozenset({"identify", "track", "group"}),
    default_mappings=DEFAULT_MAPPINGS,
    check=check,
    description="Amazon EventBridge PutEvents (10 entries / 256 KB per call), SigV4 via botocore.",
)
