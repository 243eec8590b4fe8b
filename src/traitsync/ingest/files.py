"""Import JSONL, gzipped JSONL and Parquet files of Segment messages into the log.

Files go through the same validation and messageId dedup as the HTTP API, in chunks, so a
re-run of the same import stores nothing twice.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from traitsync.ingest.suppressions import SUPPRESSED, IdentifierReader, Suppressions
from traitsync.log import EventLog

CHUNK = 2000


@dataclass
class ImportSummary:
    files: int = 0
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    bad_lines: list[str] = field(default_factory=list)


def _iter_jsonl(path: Path, summary: ImportSummary) -> Iterator[Any]:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                summary.rejected["bad_request"] += 1
                if len(summary.bad_lines) < 20:
                    summary.bad_lines.append(f"{path}:{lineno}: invalid JSON ({exc})")


def _iter_parquet(path: Path) -> Iterator[Any]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    for batch in table.iter_batches(batch_size=CHUNK):
        for row in batch.to_pylist():
            body = row.get("body")
            if isinstance(body, str) and body.startswith("{"):  # our own `log export --format parquet`
                yield orjson.loads(body)
                continue
            # Exports often keep nested objects as JSON text columns; decode them back.
            for key in ("properties", "traits", "context", "integrations"):
                value = row.get(key)
                if isinstance(value, str) and value.startswith("{"):
                    try:
                        row[key] = orjson.loads(value)
                    except orjson.JSONDecodeError:
                        pass
            yield {k: v for k, v in row.items() if v is not None}


def iter_messages(path: Path, summary: ImportSummary) -> Iterator[Any]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return _iter_parquet(path)
    if name.endswith((".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")):
        return _iter_jsonl(path, summary)
    raise ValueError(f"{path}: unknown file type; use .jsonl, .jsonl.gz or .parquet")


def import_files(event_log: EventLog, source_id: str, paths: list[Path],
                 progress: Callable[[int], None] | None = None,
                 readers: Sequence[IdentifierReader] = ()) -> ImportSummary:
    """``readers``: how to find identifiers beyond the built-in ones (``Suppressions``)."""
    summary = ImportSummary()
    suppressions = Suppressions(event_log.db, readers=readers)
    suppressions.load()  # a restored export must not bring back a suppressed person
    conn = event_log.db.connect()
    try:
        for path in paths:
            summary.files += 1
            chunk: list[Any] = []
            for message in iter_messages(path, summary):
                chunk.append(message)
                if len(chunk) >= CHUNK:
                    _flush(event_log, source_id, chunk, summary, conn, progress, suppressions)
                    chunk = []
            if chunk:
                _flush(event_log, source_id, chunk, summary, conn, progress, suppressions)
    finally:
        conn.close()
    return summary


def _flush(event_log: EventLog, source_id: str, chunk: list[Any], summary: ImportSummary, conn: Any,
           progress: Callable[[int], None] | None, suppressions: Suppressions) -> None:
    from traitsync.spec.validate import Rejection, normalise

    summary.read += len(chunk)
    size = len(chunk)
    chunk = [m for m in chunk if not suppressions.suppressed(m)]
    if len(chunk) < size:
        summary.rejected[SUPPRESSED] += size - len(chunk)
    # Count rejections by code here: append_messages records them but returns only totals.
    import time

    now = int(time.time() * 1000)
    for raw in chunk:
        result = normalise(raw, received_at_ms=now, keep_received_at=True)
        if isinstance(result, Rejection):
            summary.rejected[result.code] += 1
    outcome = event_log.append_messages(source_id, chunk, received_at_ms=now, conn=conn, keep_received_at=True)
    summary.accepted += outcome.inserted
    summary.duplicates += outcome.duplicates
    if progress is not None:
        progress(size)
