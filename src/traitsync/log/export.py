"""Export the log as JSONL or Parquet, for backups, warehouses and replays elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import orjson

from traitsync.log.event_log import EventLog
from traitsync.spec.event import StoredEvent

#: Called with the log offset reached after each chunk (a progress bar's position; the total is the head).
Position = Callable[[int], None]


def iter_log(event_log: EventLog, since_ms: int | None = None, chunk: int = 5000,
             position: Position | None = None) -> Iterator[StoredEvent]:
    offset = 0
    while True:
        events = event_log.read(offset, chunk)
        if not events:
            return
        for event in events:
            if since_ms is None or event.received_at_ms >= since_ms:
                yield event
        offset = events[-1].offset
        if position is not None:
            position(offset)


def export_jsonl(event_log: EventLog, out: IO[bytes], since_ms: int | None = None,
                 position: Position | None = None) -> int:
    count = 0
    for event in iter_log(event_log, since_ms, position=position):
        out.write(orjson.dumps(event.body) + b"\n")
        count += 1
    return count


def export_parquet(event_log: EventLog, path: Path, since_ms: int | None = None,
                   position: Position | None = None) -> int:
    """One row per event: the indexed columns plus the whole message as JSON text.

    These are the columns ``traitsync compute --events-from`` reads back (``offset``, ``userId`` and
    ``anonymousId`` included), so an export is a batch engine's input as it is.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("offset", pa.int64()), ("messageId", pa.string()), ("source_id", pa.string()),
                        ("type", pa.string()), ("event", pa.string()), ("userId", pa.string()),
                        ("anonymousId", pa.string()), ("timestamp_ms", pa.int64()),
                        ("received_at_ms", pa.int64()), ("body", pa.string())])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        rows: list[StoredEvent] = []

        def flush() -> None:
            writer.write_table(pa.table({
                "offset": [e.offset for e in rows], "messageId": [e.message_id for e in rows],
                "source_id": [e.source_id for e in rows], "type": [e.type for e in rows],
                "event": [e.event for e in rows], "userId": [e.user_id for e in rows],
                "anonymousId": [e.anonymous_id for e in rows], "timestamp_ms": [e.timestamp_ms for e in rows],
                "received_at_ms": [e.received_at_ms for e in rows],
                "body": [orjson.dumps(e.body).decode() for e in rows]}, schema=schema))
            rows.clear()

        for event in iter_log(event_log, since_ms, position=position):
            rows.append(event)
            count += 1
            if len(rows) >= 10_000:
                flush()
        if rows:
            flush()
    return count
