"""Run a compiled query on an engine and return each (computation, profile, value) that is set.

* DuckDB: in process, over the store's tables read as Arrow (no DuckDB extension is loaded:
  the JSON functions are built in, and the SQLite store is read by Python's sqlite3).
* PostgreSQL: inside the PostgreSQL store, in one read-only transaction.
* Spark: over Parquet files of the same tables (see :mod:`inputs`), any master URL.

DuckDB and Spark can read the events from your own Parquet or Delta location instead of the store
(:mod:`event_files`); the profile tables still come from the store.

Sessions run in UTC because dates without an offset are UTC in the reference evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from traitsync.compute.batch.compiler import BatchQuery
from traitsync.compute.batch.errors import BatchInputError
from traitsync.compute.batch.event_files import (
    EventsLocation,
    check_schema,
    delta_dataset,
    delta_files,
    events_view,
    profile_events_view,
)
from traitsync.compute.batch.inputs import input_tables, read_tables
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


def _event_filter(query: BatchQuery, dialect: str) -> str:
    """The query's own event filter, pushed into the located events (names read, up to as-of).

    Names are quoted by sqlglot for the dialect: Spark escapes a quote with a backslash, and
    reads ``'a''b'`` as two adjacent literals.
    """
    from sqlglot import exp

    names = ", ".join(exp.Literal.string(n).sql(dialect) for n in query.event_names)
    if not names:
        return " WHERE 1 = 0"
    quote = "`" if dialect == "spark" else '"'
    return f" WHERE {quote}event{quote} IN ({names}) AND timestamp_ms <= {int(query.as_of_ms)}"


def _duckdb_events(con: Any, location: EventsLocation, query: BatchQuery) -> None:
    if location.remote:
        raise BatchInputError(f"--events-from {location.uri}: DuckDB reads local files only (no extension is "
                              "downloaded at run time); use --engine spark for a remote location")
    if location.format == "delta":
        con.register("located_events", delta_dataset(location))
        source = "located_events"
    else:
        files = ", ".join("'" + f.replace("'", "''") + "'" for f in location.files)
        source = f"read_parquet([{files}], union_by_name = true)"
    # Views, not a copy: materializing the located events measured the same CPU and held the bodies in memory.
    con.execute("CREATE VIEW events AS " + events_view(source, '"') + _event_filter(query, "duckdb"))
    con.execute("CREATE VIEW profile_events AS " + profile_events_view('"'))


def run_duckdb(db: Database, query: BatchQuery, *, progress: Callable[[int], None] | None = None,
               threads: int | None = None, events_from: EventsLocation | None = None) -> list[Row]:
    import duckdb

    tables = read_tables(db, query.event_names, query.as_of_ms, progress,
                         tables=input_tables(accounts=query.accounts, events_from=events_from is not None))
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        # Rows come back in no particular order anyway; without it DuckDB may stream and spill freely.
        con.execute("SET preserve_insertion_order = false")
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        for name, table in tables.items():
            con.register(name, table)
        if events_from is not None:
            _duckdb_events(con, events_from, query)
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


_SPARK_TYPES = {"long": "int64", "integer": "int32", "short": "int16", "byte": "int8", "string": "string"}


def _spark_events(session: Any, location: EventsLocation, query: BatchQuery) -> None:
    """Temporary views ``events`` and ``profile_events`` over the located events."""
    reader = session.read
    if location.format == "delta":
        if "delta" in str(session.conf.get("spark.sql.extensions", "")).lower():
            frame = reader.format("delta").load(location.uri)
        elif location.remote:
            raise BatchInputError(f"--events-from {location.uri}: a remote Delta table needs delta-spark on the "
                                  "Spark session (spark.sql.extensions = io.delta.sql.DeltaSparkSessionExtension)")
        else:  # delta-rs resolves the transaction log; Spark reads the current version's files
            delta_dataset(location)  # a clear error when deltalake is missing or the table is unreadable
            frame = reader.parquet(*delta_files(location))
    elif location.files:
        frame = reader.parquet(*location.files)
    else:
        try:
            frame = reader.option("recursiveFileLookup", "true").parquet(location.uri)
        except Exception as exc:
            raise BatchInputError(f"--events-from {location.uri}: Spark cannot read it "
                                  f"({str(exc).strip().splitlines()[0]})") from None
    check_schema(location.uri, {f.name: _SPARK_TYPES.get(f.dataType.typeName(), f.dataType.typeName())
                                for f in frame.schema.fields})
    frame.createOrReplaceTempView("located_events")
    session.sql(events_view("located_events", "`") + _event_filter(query, "spark")).createOrReplaceTempView("events")
    session.sql(profile_events_view("`")).createOrReplaceTempView("profile_events")


def run_spark_on(session: Any, folder: Path, query: BatchQuery, events_from: EventsLocation | None = None) -> list[Row]:
    """Run on an existing SparkSession over the Parquet inputs in ``folder``.

    Each run gets a session of its own (same Spark context, its own temporary views): the
    ``CACHE TABLE`` steps leave temporary views behind, and a second query in the same session
    was refused with TEMP_TABLE_OR_VIEW_ALREADY_EXISTS.
    """
    session = session.newSession()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    for path in sorted(folder.glob("*.parquet")):
        session.read.parquet(str(path)).createOrReplaceTempView(path.stem)
    if events_from is not None:
        _spark_events(session, events_from, query)
    *setup, final = render_script(query.ast, "spark")
    try:
        for statement in setup:
            session.sql(statement)
        return list(_decode([tuple(r) for r in session.sql(final).collect()]))
    finally:
        for statement in setup:
            session.sql("UNCACHE TABLE IF EXISTS " + statement.split()[2])


def spark_session(master: str = "local[1]", conf: dict[str, str] | None = None) -> Any:
    """A SparkSession in UTC (pyspark is the optional ``spark`` extra).

    ``conf`` is applied before the JVM starts, so ``spark.driver.memory`` works in local mode
    (Spark's default 1 GB heap ran out on the benchmark's 100 cached steps); settings in
    ``spark-defaults.conf`` apply too.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("--engine spark needs pyspark: pip install 'traitsync[spark]'") from None
    builder = (SparkSession.builder.master(master).appName("traitsync-batch")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.codegen.wholeStage", "false"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def run(engine: str, db: Database, query: BatchQuery, *, progress: Callable[[int], None] | None = None,
        spark_master: str = "local[1]", workdir: Path | None = None,
        events_from: EventsLocation | None = None) -> list[Row]:
    """Run ``query`` on ``engine`` against the store ``db`` (events from ``events_from`` when given)."""
    if engine == "duckdb":
        return run_duckdb(db, query, progress=progress, events_from=events_from)
    if engine == "postgres":
        if events_from is not None:
            raise ConfigError("--events-from is for --engine duckdb or spark; --engine postgres reads the store")
        return run_postgres(db, query)
    if engine == "spark":
        import tempfile

        from traitsync.compute.batch.inputs import write_parquet

        session = spark_session(spark_master)
        tables = input_tables(accounts=query.accounts, events_from=events_from is not None)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            write_parquet(read_tables(db, query.event_names, query.as_of_ms, progress, tables=tables), Path(tmp))
            return run_spark_on(session, Path(tmp), query, events_from)
    raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)} (or realtime)")
