"""The store's tables as Arrow, for engines that run outside the store (DuckDB, Spark).

Only what the query reads is copied: the events of the names the definitions read up to
``as_of`` (the name and time filters are pushed down to the store) with their profile links, and
the profile, trait and identifier tables. DuckDB queries these Arrow tables in place; the Spark runner writes them as
Parquet. Either way the compiled SQL sees the store's own table and column names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from traitsync.store.database import Connection, Database

_CHUNK = 100_000
Progress = Callable[[int], None]

SCHEMAS: dict[str, pa.Schema] = {
    "events": pa.schema([("offset", pa.int64()), ("type", pa.string()), ("event", pa.string()),
                         ("source_id", pa.string()), ("timestamp_ms", pa.int64()), ("received_at_ms", pa.int64()),
                         ("body", pa.string())]),
    "profile_events": pa.schema([("offset", pa.int64()), ("profile_id", pa.string())]),
    "profiles": pa.schema([("profile_id", pa.string()), ("collection", pa.string()), ("merged_into", pa.string())]),
    "profile_traits": pa.schema([("profile_id", pa.string()), ("key", pa.string()), ("value", pa.string())]),
    "profile_external_ids": pa.schema([("profile_id", pa.string()), ("id_type", pa.string()),
                                       ("value", pa.string()), ("collection", pa.string())]),
    "profile_links": pa.schema([("user_profile_id", pa.string()), ("account_profile_id", pa.string())]),
}
#: Read only by account-level definitions (who is in which account).
_ACCOUNT_TABLES = ("profile_links",)


def _select(table: str, names: Sequence[str], as_of_ms: int) -> tuple[str, tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in SCHEMAS[table].names)
    if table == "events":
        if not names:
            return f"SELECT {cols} FROM events WHERE 1 = 0", ()
        marks = ",".join("?" * len(names))
        return f"SELECT {cols} FROM events WHERE event IN ({marks}) AND timestamp_ms <= ?", (*names, as_of_ms)
    if table == "profile_events":
        # Only the events copied above: the compiled query joins the two on the offset, and every
        # other row would be copied for nothing (most of the table when definitions read a few names).
        if not names:
            return f"SELECT {cols} FROM profile_events WHERE 1 = 0", ()
        marks = ",".join("?" * len(names))
        return ('SELECT pe."offset", pe.profile_id FROM profile_events pe JOIN events e ON e."offset" = pe."offset" '
                f"WHERE pe.profile_id IS NOT NULL AND e.event IN ({marks}) AND e.timestamp_ms <= ?",
                (*names, as_of_ms))
    return f"SELECT {cols} FROM {table}", ()


def _batches(conn: Connection, table: str, sql: str, params: tuple[Any, ...],
             progress: Progress | None) -> Iterator[pa.RecordBatch]:
    schema = SCHEMAS[table]
    cur = conn.execute(sql, params)
    while True:
        rows = cur.fetchmany(_CHUNK)
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        yield pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
                                         schema=schema)
        if progress is not None:
            progress(len(rows))


#: The tables read from the store when the events come from elsewhere (``--events-from``).
PROFILE_TABLES = ("profiles", "profile_traits", "profile_external_ids")


def input_tables(*, accounts: bool, events_from: bool) -> tuple[str, ...]:
    """Which store tables a query reads: not the events when they come from a location, and the
    account links only for a query with account-level definitions."""
    base = PROFILE_TABLES if events_from else tuple(t for t in SCHEMAS if t not in _ACCOUNT_TABLES)
    return base + (_ACCOUNT_TABLES if accounts else ())


def read_tables(db: Database, names: Sequence[str], as_of_ms: int, progress: Progress | None = None,
                tables: Sequence[str] = tuple(SCHEMAS)) -> dict[str, pa.Table]:
    """Each of ``tables`` (default: every input) as Arrow (events filtered to ``names`` and ``as_of``)."""
    conn = db.connect()
    try:
        out: dict[str, pa.Table] = {}
        for table in tables:
            sql, params = _select(table, names, as_of_ms)
            out[table] = pa.Table.from_batches(list(_batches(conn, table, sql, params, progress)),
                                               schema=SCHEMAS[table])
        if conn.dialect == "postgresql":
            conn.commit()
        return out
    finally:
        conn.close()


def count_events(db: Database, names: Sequence[str], as_of_ms: int) -> int:
    """How many event rows :func:`read_tables` will copy (for a progress bar)."""
    if not names:
        return 0
    conn = db.connect()
    try:
        marks = ",".join("?" * len(names))
        value = conn.scalar(f"SELECT COUNT(*) FROM events WHERE event IN ({marks}) AND timestamp_ms <= ?",
                            (*names, as_of_ms))
        if conn.dialect == "postgresql":
            conn.commit()
        return int(value or 0)
    finally:
        conn.close()


def write_parquet(tables: dict[str, pa.Table], folder: Path) -> dict[str, Path]:
    """One Parquet file per table under ``folder`` (the Spark runner's input)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, table in tables.items():
        path = folder / f"{name}.parquet"
        pq.write_table(table, path)
        paths[name] = path
    return paths
