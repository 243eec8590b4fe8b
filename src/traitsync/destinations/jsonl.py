"""Append each message as one JSON line to a local file (demos, audits, piping to tools).

The "request" is an ``APPEND`` to a ``file://`` URL, which delivery's file sink executes, so
the file destination goes through the same outbox, retries and overview as a vendor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field, model_validator

from traitsync.destinations.base import (
    EVENT_TYPES,
    LIST_MESSAGE_TYPE,
    Destination,
    DestinationSettings,
    Item,
    Request,
    chunks,
    dumps,
)

MAX_BATCH = 1000


class JsonlSettings(DestinationSettings):
    path: str | None = Field(default=None, description="The file to append to; `endpoint` overrides it.")

    @model_validator(mode="after")
    def _needs_a_path(self) -> JsonlSettings:
        if not (self.endpoint or self.path):
            raise ValueError("a jsonl destination needs `path` (or `endpoint`)")
        return self

    @property
    def file_url(self) -> str:
        target = self.endpoint or self.path
        assert target is not None
        if target.startswith("file://"):
            return target
        return Path(target).absolute().as_uri()


def build(items: Sequence[Item], settings: JsonlSettings) -> list[Request]:
    return [Request(method="APPEND", url=settings.file_url, indices=group, authorize=False,
                    body=b"".join(dumps(dict(items[i].fields) if items[i].fields else items[i].message) + b"\n"
                                  for i in group))
            for group in chunks(len(items), MAX_BATCH)]


DESTINATION: Destination[JsonlSettings] = Destination(
    name="JSONL File",
    slug="jsonl",
    settings_model=JsonlSettings,
    build=build,
    default_rate=1000.0,
    max_batch=MAX_BATCH,
    modes=frozenset({"event", "list"}),
    custom_fields=True,
    description="Append each message (or your mapped fields) as one JSON line to a local file.",
    min_list_interval_s=0.0,
    event_types=EVENT_TYPES | {LIST_MESSAGE_TYPE},
)
