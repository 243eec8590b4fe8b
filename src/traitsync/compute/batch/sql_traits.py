"""SQL traits: a query on the user's warehouse; each returned column becomes a trait on a profile.

``sql_traits:`` in ``traitsync.yaml`` names a warehouse (a DuckDB file, a PostgreSQL URL, or a
Spark master: ``spark://HOST:PORT``, or ``spark:MASTER`` such as ``spark:local[2]`` or ``spark:yarn``), a
query returning ``user_id``, ``email`` or ``anonymous_id`` plus trait columns, and a schedule
(default every 12 hours, at most hourly, as Segment's). Each run matches rows to profiles by that
identifier and publishes one value per profile, the object of its columns, through the same
results as computed traits; activation sends it as ONE identify carrying every column. A profile
that was in the previous result and is missing from this one gets every column set to null.
Rows whose identifier matches no profile are counted and skipped (traitsync creates profiles only
from events).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from traitsync.compute.batch.errors import SqlTraitError
from traitsync.config.yaml_lines import LocatedDocument
from traitsync.definitions.durations import parse_duration
from traitsync.definitions.ir import computation_id
from traitsync.store.database import Database

ID_COLUMNS = ("user_id", "email", "anonymous_id")
MAX_COLUMNS = 25
DEFAULT_EVERY = "12h"


class SqlTraitConfig(BaseModel):
    """One entry of ``sql_traits:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=200, pattern=r"^[a-z0-9_]+$",
                     description="Names the SQL trait in connections and payloads (snake_case).")
    name: str | None = None
    warehouse: str = Field(min_length=1, description="duckdb:///path/to/file.duckdb, postgresql://..., "
                                                     "spark://HOST:PORT or spark:MASTER (spark:local[2], spark:yarn)")
    query: str = Field(min_length=1, description="Returns user_id, email or anonymous_id plus trait columns.")
    every: str = Field(DEFAULT_EVERY, description="How often it runs: 1h at the most often (default 12h).")

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        seconds = parse_duration(value)
        if seconds is None or seconds < 3600:
            raise ValueError("every must be a duration of at least 1h, such as 1h, 12h or 1d")
        return value

    @field_validator("warehouse")
    @classmethod
    def _warehouse(cls, value: str) -> str:
        if not value.startswith(("duckdb://", "postgresql://", "postgres://", "spark:")) or value in ("spark:",
                                                                                                     "spark://"):
            raise ValueError("warehouse must be duckdb:///FILE, postgresql://USER@HOST/DB, spark://HOST:PORT "
                             "or spark:MASTER (such as spark:local[2])")
        return value

    @property
    def id(self) -> str:
        return computation_id("tra", self.key)

    @property
    def every_seconds(self) -> int:
        return parse_duration(self.every) or 12 * 3600


def load_sql_traits(doc: LocatedDocument) -> list[SqlTraitConfig]:
    """``sql_traits:`` of the config; errors name the file, line and key."""
    data = doc.data if isinstance(doc.data, dict) else {}
    entries = data.get("sql_traits")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise doc.error(("sql_traits",), "sql_traits must be a list")
    out: list[SqlTraitConfig] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        try:
            trait = SqlTraitConfig.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise doc.error(("sql_traits", i, *first["loc"]), first["msg"]) from None
        if trait.key in seen:
            raise doc.error(("sql_traits", i, "key"), f"SQL trait {trait.key!r} is defined twice")
        seen.add(trait.key)
        out.append(trait)
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def spark_master(warehouse: str) -> str:
    """``spark://HOST:PORT`` is itself the master URL; ``spark:MASTER`` names any other (local[2], yarn, k8s://...)."""
    return warehouse if warehouse.startswith("spark://") else warehouse[len("spark:"):]


def _query_spark(trait: SqlTraitConfig) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The query in a session of the shared Spark context: tables of its catalog, or ``parquet.`PATH```."""
    from traitsync.compute.batch.runners import spark_session

    session = spark_session(spark_master(trait.warehouse)).newSession()
    frame = session.sql(trait.query)
    return list(frame.columns), [tuple(r) for r in frame.collect()]


def query_warehouse(trait: SqlTraitConfig) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of the trait's query; any failure is one clear line."""
    if trait.warehouse.startswith("spark:"):
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise SqlTraitError(f"SQL trait {trait.key}: a Spark warehouse needs pyspark: "
                                "pip install 'traitsync[spark]'") from None
    try:
        if trait.warehouse.startswith("spark:"):
            return _query_spark(trait)
        if trait.warehouse.startswith("duckdb://"):
            import duckdb

            path = trait.warehouse.split(":///", 1)[-1]  # as sqlite URLs: duckdb:////abs or duckdb:///rel
            con = duckdb.connect(path, read_only=True)
            try:
                cur = con.execute(trait.query)
                columns = [d[0] for d in cur.description or []]
                return columns, cur.fetchall()
            finally:
                con.close()
        import psycopg

        with psycopg.connect(trait.warehouse, connect_timeout=10) as conn, conn.cursor() as pcur:
            pcur.execute(trait.query)  # type: ignore[call-overload]
            columns = [d.name for d in pcur.description or []]
            return columns, list(pcur.fetchall())
    except Exception as exc:
        raise SqlTraitError(f"SQL trait {trait.key}: the warehouse refused the query: {_one_line(exc)}") from None


@dataclass(frozen=True)
class SqlTraitRun:
    rows: int
    matched: int
    unmatched: int
    changed: int


def _scalar(value: Any) -> Any:
    """Strings and numbers only (Segment's rule); anything else is sent as its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _resolve(db: Database, id_type: str, values: Sequence[str]) -> dict[str, str]:
    """identifier value -> canonical profile id."""
    out: dict[str, str] = {}
    conn = db.connect()
    try:
        for i in range(0, len(values), 500):
            part = list(values[i:i + 500])
            marks = ",".join("?" * len(part))
            for value, pid in conn.fetchall(
                    "SELECT x.value, COALESCE(p.merged_into, x.profile_id) FROM profile_external_ids x "
                    "LEFT JOIN profiles p ON p.profile_id = x.profile_id WHERE x.collection = 'users' AND "
                    f"x.id_type = ? AND x.value IN ({marks})", (id_type, *part)):
                out[str(value)] = str(pid)
        if conn.dialect == "postgresql":
            conn.commit()
        return out
    finally:
        conn.close()


def run_sql_trait(db: Database, trait: SqlTraitConfig, *, now_ms: int | None = None) -> SqlTraitRun:
    """Query the warehouse, match rows to profiles and publish changed values (one transaction)."""
    from traitsync.compute.batch.publish import Target, publish_values

    columns, rows = query_warehouse(trait)
    lowered = [c.lower() for c in columns]
    id_col = next((c for c in ID_COLUMNS if c in lowered), None)
    if id_col is None:
        raise SqlTraitError(f"SQL trait {trait.key}: the query returns no user_id, email or anonymous_id column "
                            f"(columns: {', '.join(columns) or 'none'})")
    if "user_id" in lowered and "anonymous_id" in lowered:
        raise SqlTraitError(f"SQL trait {trait.key}: return user_id or anonymous_id, not both")
    index = lowered.index(id_col)
    traits = [(i, c) for i, c in enumerate(columns) if lowered[i] not in ID_COLUMNS]
    if not traits:
        raise SqlTraitError(f"SQL trait {trait.key}: the query returns no trait column besides {id_col}")
    if len(columns) > MAX_COLUMNS:
        raise SqlTraitError(f"SQL trait {trait.key}: {len(columns)} columns; at most {MAX_COLUMNS}")
    ids = sorted({str(r[index]) for r in rows if r[index] is not None})
    profiles = _resolve(db, id_col, ids)
    values: dict[str, Any] = {}
    unmatched = 0
    for row in rows:
        pid = profiles.get(str(row[index])) if row[index] is not None else None
        if pid is None:
            unmatched += 1
            continue
        values[pid] = {name: _scalar(row[i]) for i, name in traits}
    at = now_ms if now_ms is not None else int(time.time() * 1000)
    import hashlib

    digest = hashlib.sha256(f"{trait.warehouse}\n{trait.query}".encode()).hexdigest()
    target = Target(trait.key, trait.id, "trait", audience=False, gone={name: None for _, name in traits},
                    definition_hash=digest)
    published = publish_values(db, target, values, at, "sql_trait")
    return SqlTraitRun(rows=len(rows), matched=len(values), unmatched=unmatched,
                       changed=published.changed.get(trait.key, 0))


def sql_traits_json_schema() -> dict[str, Any]:
    return {"type": "array", "items": SqlTraitConfig.model_json_schema()}
