"""Forward messages to a Segment-compatible Tracking API (``POST /v1/batch``).

Useful for chaining: another traitsync, Segment itself, or RudderStack. Auth is HTTP Basic
with the write key as the user name and an empty password, as the Tracking API documents.
Batches stay under the API's 500 KB per request and 100 messages keeps each request small
enough that one oversized message (the API refuses > 32 KB) fails few neighbours.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from pydantic import Field, SecretStr

from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Item,
    Message,
    Request,
    chunks,
    dumps,
)

DEFAULT_HOST = "https://api.segment.io"
MAX_BATCH = 100
MAX_BODY_BYTES = 500 * 1024


class SegmentSettings(DestinationSettings):
    write_key: SecretStr = Field(description="The receiving source's write key.")


def _basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode("ascii")


def _batch_groups(messages: Sequence[Message]) -> list[tuple[int, ...]]:
    """Split into groups of <= 100 messages whose body stays <= 500 KB."""
    groups: list[tuple[int, ...]] = []
    for group in chunks(len(messages), MAX_BATCH):
        current: list[int] = []
        size = 0
        for i in group:
            item = len(dumps(messages[i])) + 1
            if current and size + item > MAX_BODY_BYTES - 64:
                groups.append(tuple(current))
                current, size = [], 0
            current.append(i)
            size += item
        if current:
            groups.append(tuple(current))
    return groups


def build(items: Sequence[Item], settings: SegmentSettings) -> list[Request]:
    messages = [item.message for item in items]
    host = (settings.endpoint or DEFAULT_HOST).rstrip("/")
    headers = {"Content-Type": "application/json", "User-Agent": "traitsync (segment)",
               "Authorization": _basic(settings.write_key.get_secret_value())}
    return [Request(method="POST", url=f"{host}/v1/batch", headers=headers, indices=group,
                    body=dumps({"batch": [messages[i] for i in group]}), authorize=False)
            for group in _batch_groups(messages)]


DESTINATION: Destination[SegmentSettings] = Destination(
    name="Segment",
    slug="segment",
    settings_model=SegmentSettings,
    build=build,
    default_rate=100.0,
    max_batch=MAX_BATCH,
    modes=frozenset({"event"}),
    description="Forward to any Segment-compatible Tracking API (/v1/batch): Segment, RudderStack, traitsync.",
    event_types=frozenset({"identify", "track", "group", "page", "screen", "alias"}),
)
