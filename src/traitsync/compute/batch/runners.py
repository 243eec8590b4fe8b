"""Run a compiled query on an engine and return each (computation, profile, value) that is set.

* DuckDB: in process, over the store's tables read as Arrow (no DuckDB extension is loaded:
  the JSON functions are built in, and the SQLite store is read by Python's sqlite3).
* PostgreSQL: inside the PostgreSQL store, in one read-only transaction.
* Spark: over Parquet files of the same tables (see :mod:`inputs`), any master URL.

Sessions run in UTC because dates without an offset are UTC in the reference evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from traitsync.compute.batch.compiler import BatchQuery
from traitsync.compute.batch.inputs import read_tables
from traitsync.compute.batch.render import render, render_script
from traitsync.compute.batch.values import decode
from traitsync.errors import ConfigError
from traitsync.store.database import Database

#: (computation key, profile id, value) for every profile with a value (audiences: members).
Row = tuple[str, str, Any]
ENGINES = ("duckdb", "postgres", "spark")


def _decode(rows: Sequence[Sequence[Any]]) -> Iterator[Row]:
    for key, pid, k, j, n, s in rows:
        yield str(key), str(pid), decode(k, j, n, s)


def run_duckdb(db: Database, query: BatchQuery, *, progress: Callable[[int], None] | None = None,
               threads: int | None = None) -> list[Row]:
    import duckdb

    tables = read_tables(db, query.event_names, query.as_of_ms, progress, accounts=query.accounts)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        for name, table in tables.items():
            con.register(name, table)
        return list(_decode(con.execute(render(query.ast, "duckdb")).fetchall()))
    finally:
        con.close()


def run_postgres(db: Database, query: BatchQuery) -> list[Row]:
    if db.dialect != "postgresql":
        raise ConfigError("--engine postgres runs inside a PostgreSQL store; this store is SQLite "
                          "(use --engine duckdb, or point --database-url at PostgreSQL)")
    conn = db.connect()
    try:
        with conn.transaction():
            conn.raw.execute("SET LOCAL TimeZone = 'UTC'")
            cur = conn.raw.cursor()
            cur.execute(render(query.ast, "postgres"))  # no parameters: psycopg leaves % alone
            return list(_decode(cur.fetchall()))
    finally:
        conn.close()


def run_spark_on(session: Any, folder: Path, query: BatchQuery) -> list[Row]:
    """Run on an existing SparkSession over the Parquet inputs in ``folder``.

    Each run gets a session of its own (same Spark context, its own temporary views): the
    ``CACHE TABLE`` steps leave temporary views behind, and a second query in the same session
    was refused with TEMP_TABLE_OR_VIEW_ALREADY_EXISTS.
    """
    session = session.newSession()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    for path in sorted(folder.glob("*.parquet")):
        session.read.parquet(str(path)).createOrReplaceTempView(path.stem)
    *setup, final = render_script(query.ast, "spark")
    try:
        for statement in setup:
            session.sql(statement)
        return list(_decode([tuple(r) for r in session.sql(final).collect()]))
    finally:
        for statement in setup:
            session.sql("UNCACHE TABLE IF EXISTS " + statement.split()[2])


def spark_session(master: str = "local[1]") -> Any:
    """A SparkSession in UTC (pyspark is the optional ``spark`` extra)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("--engine spark needs pyspark: pip install 'traitsync[spark]'") from None
    return (SparkSession.builder.master(master).appName("traitsync-batch")
            .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2").config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.codegen.wholeStage", "false").getOrCreate())


def run(engine: str, db: Database, query: BatchQuery, *, progress: Callable[[int], None] | None = None,
        spark_master: str = "local[1]", workdir: Path | None = None) -> list[Row]:
    """Run ``query`` on ``engine`` against the store ``db``."""
    if engine == "duckdb":
        return run_duckdb(db, query, progress=progress)
    if engine == "postgres":
        return run_postgres(db, query)
    if engine == "spark":
        import tempfile

        from traitsync.compute.batch.inputs import write_parquet

        session = spark_session(spark_master)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            write_parquet(read_tables(db, query.event_names, query.as_of_ms, progress, accounts=query.accounts),
                          Path(tmp))
            return run_spark_on(session, Path(tmp), query)
    raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)} (or realtime)")
