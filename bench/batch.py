"""Batch engine: full compute of 50 computed traits + 50 audiences on DuckDB, against hand-written SQL.

A deterministic generator (integer hashing in DuckDB SQL, no randomness) writes a shop mix of
``10M x scale`` events over ``1M x scale`` profiles as Parquet files shaped like the store's tables
(events with their JSON bodies, profile_events, profiles, traits, identifiers). Then:

* full compute: the 100 definitions compiled to one query, run by DuckDB over the Parquet files
  into a table (``CREATE TABLE ... AS``), timed from SQL text to the last row;
* three definitions, each compiled alone and as a hand-written query for the same answer, in
  the same run, over the tables as the DuckDB runner hands them over (the events of the names
  read, their profile links, in memory): ratio of process CPU, and the answers compared;
* baseline: the realtime engine's backfill (identity + engine over a SQLite store) of the same
  definitions on the first ``--realtime-events`` events, as events/s;
* optionally PostgreSQL (``--postgres URL``: the tables are copied into a fresh schema and the
  query runs there) and Spark (``--spark``, local mode, over the same Parquet files).

    .venv/bin/python bench/batch.py                    # scale 0.01: 100k events, 10k profiles
    .venv/bin/python bench/batch.py --scale 1          # the target: 10M events, 1M profiles
    .venv/bin/python bench/batch.py --scale 0.1 --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from traitsync.compute.batch.compiler import compile_definitions
from traitsync.compute.batch.render import render, render_script
from traitsync.config.yaml_lines import load_yaml_text
from traitsync.definitions import Definitions, load_definitions

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so every run computes the same answer
DAY = 86_400_000
EVENTS = ["Order Completed", "Product Viewed", "Product Added", "Page Viewed", "Signed Up"]
TABLES = ("events", "profile_events", "profiles", "profile_traits", "profile_external_ids")


def definitions() -> Definitions:
    """50 traits and 50 audiences of every kind, windows, funnels, references (deterministic)."""
    traits: list[str] = []
    windows = ["", ".within(1 days)", ".within(7 days)", ".within(30 days)", ".within(90 days)"]
    for i, window in enumerate(windows):
        traits += [f"event('Order Completed'){window}.count()", f"event('Product Viewed'){window}.count()",
                   f"event('Order Completed'){window}.sum(property('total'))",
                   f"event('Order Completed'){window}.avg(property('total'))",
                   f"event('Product Viewed'){window}.unique(property('sku')).count()",
                   f"event('Page Viewed'){window}.count()"]
        if i < 4:
            traits += [f"event('Order Completed'){window}.max(property('total'))",
                       f"event('Product Viewed'){window}.mode(property('sku'), 2)"]
    traits += ["event('Product Viewed').first(property('sku'))", "event('Product Viewed').last(property('sku'))",
               "event('Page Viewed').last(property('url'))", "event('Signed Up').first(property('plan'))",
               "event('Product Added').unique(property('sku'))", "event('Order Completed').min(property('total'))",
               "event('Order Completed').where(property('total') > 50).count()",
               "event('Product Added').between(1 days, 7 days).count()",
               "event('Product Added').within(7 days).first(property('sku'))",
               "event('Product Viewed').within(30 days).last(property('sku'))",
               "event('Order Completed').within(30 days).max(property('sku') as string)",
               "event('Signed Up').count()"]
    traits = traits[:50]
    auds = ["event('Order Completed').within(30 days).count() >= 1", "event('Order Completed').count() >= 3",
            "event('Product Viewed').within(7 days).count() >= 5", "event('Product Added').within(1 days).count() >= 1",
            "event('Page Viewed').within(7 days).count() = 0", "event('Order Completed').within(7 days).count() <= 1",
            "event('Product Added').where(event('Order Completed').within(parent: 1 days).count() = 0)"
            ".within(7 days).count() >= 1",
            "event('Product Viewed').between(1 days, 7 days).count() >= 2", "trait('t0') >= 2", "trait('t2') > 500",
            "audience('a0') AND trait('t7') != 'x'", "audience('a1') OR audience('a2')", "NOT audience('a0')",
            "event('Signed Up').count() >= 1 AND event('Order Completed').count() = 0",
            "event('Order Completed').where(property('total') > 90).within(30 days).count() >= 1",
            "trait('plan') = 'pro'", "event('Page Viewed').within(1 days).count() >= 3",
            "audience('a8') AND audience('a3')", "event('Product Viewed').within(30 days).count() >= 10"]
    for i, name in enumerate(EVENTS):
        for n, window in ((1, "7 days"), (2, "30 days"), (4, "90 days")):
            auds.append(f"event('{name}').within({window}).count() >= {n}")
        auds.append(f"event('{name}').where(property('total') > {20 * i}).count() >= 1")
        auds.append(f"audience('a{i}') AND event('{name}').within(90 days).count() >= 1")
    auds += [f"trait('t{i}') > {i}" for i in range(20, 26)]
    auds = auds[:50]
    text = ["computed_traits:"] + [f"  - key: t{i}\n    query: \"{q}\"" for i, q in enumerate(traits)]
    text += ["audiences:"] + [f"  - key: a{i}\n    query: \"{q}\"" for i, q in enumerate(auds)]
    return load_definitions(load_yaml_text("\n".join(text) + "\n"))


def generate(con: duckdb.DuckDBPyConnection, folder: Path, events: int, profiles: int) -> None:
    """The store-shaped tables as Parquet; every value is a hash of the row number."""
    h = "((i::BIGINT * 2654435761 + {k}) % 4294967296)"
    con.execute(f"""
        CREATE OR REPLACE TABLE g AS
        SELECT i AS "offset",
               'use_' || ({h.format(k=1)} % {profiles}) AS profile_id,
               {h.format(k=2)} % 100 AS kind,
               {NOW} - ({h.format(k=3)} * 3600 % (180 * {DAY}::BIGINT)) AS ts,
               {h.format(k=4)} % 200 AS total,
               'sku' || ({h.format(k=5)} % 50) AS sku
        FROM range(1, {events + 1}) t(i)""")
    con.execute("""
        CREATE OR REPLACE TABLE events AS
        SELECT "offset", CASE WHEN kind < 60 THEN 'page' ELSE 'track' END AS type,
               CASE WHEN kind < 60 THEN 'Page Viewed' WHEN kind < 85 THEN 'Product Viewed'
                    WHEN kind < 93 THEN 'Product Added' WHEN kind < 99 THEN 'Order Completed'
                    ELSE 'Signed Up' END AS event,
               'src_web' AS source_id, ts AS timestamp_ms, ts + 1000 AS received_at_ms,
               CASE WHEN kind < 60
                    THEN '{"type":"page","name":"Home","properties":{"url":"/p/' || sku || '"}}'
                    ELSE '{"type":"track","properties":{"total":' || total || ',"sku":"' || sku ||
                         '","plan":"' || CASE WHEN total % 3 = 0 THEN 'pro' ELSE 'free' END || '"}}' END AS body
        FROM g""")
    con.execute('CREATE OR REPLACE TABLE profile_events AS SELECT "offset", profile_id FROM g')
    con.execute(f"""CREATE OR REPLACE TABLE profiles AS SELECT 'use_' || i AS profile_id, 'users' AS collection,
                    CAST(NULL AS VARCHAR) AS merged_into FROM range(0, {profiles}) t(i)""")
    con.execute(f"""CREATE OR REPLACE TABLE profile_external_ids AS
                    SELECT 'use_' || i AS profile_id, 'user_id' AS id_type, 'u' || i AS value, 'users' AS collection
                    FROM range(0, {profiles}) t(i) WHERE i % 10 <> 0""")
    con.execute(f"""CREATE OR REPLACE TABLE profile_traits AS
                    SELECT 'use_' || i AS profile_id, 'plan' AS key,
                           CASE WHEN i % 4 = 0 THEN '"pro"' ELSE '"free"' END AS value
                    FROM range(0, {profiles}) t(i)""")
    for table in TABLES:
        con.execute(f"COPY {table} TO '{folder / table}.parquet' (FORMAT parquet)")
        con.execute(f"DROP TABLE {table}")
    con.execute("DROP TABLE g")


def views(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    for table in TABLES:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{folder / table}.parquet')")


def cpu_seconds() -> float:
    """User + system CPU of this process, DuckDB's threads included.

    DuckDB's own profiler ``cpu_time`` was not used: on a loaded machine it counted threads waiting
    for a core (269 "CPU" seconds for a query in a process that used 189 s in all).
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(con: duckdb.DuckDBPyConnection, sql: str, table: str) -> tuple[float, int, float]:
    """(wall seconds, rows, process CPU seconds): the machine may be shared, so CPU is reported too."""
    cpu = cpu_seconds()
    start = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    rows = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return seconds, int(rows[0]) if rows else 0, cpu


# Hand-written queries for the same answers as the compiled ones (counter, sum, audience).
HAND = {
    "t3": ("event('Order Completed').within(1 days).count()", f"""
        SELECT 'x' AS computation_key, p.profile_id AS pid, COALESCE(c.n, 0) AS n
        FROM profiles p JOIN (SELECT DISTINCT profile_id FROM profile_external_ids
                              WHERE id_type IN ('user_id', 'email', 'android.idfa', 'ios.idfa')) i
          ON i.profile_id = p.profile_id
        LEFT JOIN (SELECT pe.profile_id, COUNT(*) AS n FROM events e JOIN profile_events pe USING ("offset")
                   WHERE e.event = 'Order Completed' AND e.timestamp_ms > {NOW} - {DAY}
                     AND e.timestamp_ms <= {NOW}
                   GROUP BY 1) c ON c.profile_id = p.profile_id
        WHERE p.merged_into IS NULL"""),
    "sum90": ("event('Order Completed').within(90 days).sum(property('total'))", f"""
        SELECT 'x' AS computation_key, pe.profile_id AS pid,
               SUM(CAST(json_extract(e.body, '$.properties.total') AS BIGINT)) AS n
        FROM events e JOIN profile_events pe USING ("offset")
        JOIN (SELECT DISTINCT profile_id FROM profile_external_ids
              WHERE id_type IN ('user_id', 'email', 'android.idfa', 'ios.idfa')) i ON i.profile_id = pe.profile_id
        WHERE e.event = 'Order Completed' AND e.timestamp_ms > {NOW} - 90 * {DAY}::BIGINT AND e.timestamp_ms <= {NOW}
          AND json_type(e.body, '$.properties.total') IN ('UBIGINT', 'BIGINT')
        GROUP BY 2"""),
    "buyers": ("event('Order Completed').within(30 days).count() >= 1", f"""
        SELECT DISTINCT 'x' AS computation_key, pe.profile_id AS pid, TRUE AS n
        FROM events e JOIN profile_events pe USING ("offset")
        JOIN (SELECT DISTINCT profile_id FROM profile_external_ids
              WHERE id_type IN ('user_id', 'email', 'android.idfa', 'ios.idfa')) i ON i.profile_id = pe.profile_id
        WHERE e.event = 'Order Completed' AND e.timestamp_ms > {NOW} - 30 * {DAY}::BIGINT
          AND e.timestamp_ms <= {NOW}"""),
}


def single(query: str, key: str) -> Definitions:
    kind = "audiences" if any(op in query for op in (">=", "<=", " = ")) else "computed_traits"
    return load_definitions(load_yaml_text(f"{kind}:\n  - key: {key}\n    query: \"{query}\"\n"))


def runner_inputs(folder: Path, names: list[str], threads: int) -> duckdb.DuckDBPyConnection:
    """A connection holding the tables as the DuckDB runner hands them to a query: in memory, the
    events of the names read up to as-of, only their profile links, and the profile tables."""
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    marks = ", ".join(f"'{n}'" for n in names)
    con.execute(f"""CREATE TABLE events AS SELECT * FROM read_parquet('{folder}/events.parquet')
                    WHERE event IN ({marks}) AND timestamp_ms <= {NOW}""")
    con.execute(f"""CREATE TABLE profile_events AS SELECT pe.* FROM read_parquet('{folder}/profile_events.parquet') pe
                    WHERE pe."offset" IN (SELECT "offset" FROM events)""")
    for table in ("profiles", "profile_traits", "profile_external_ids"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{folder}/{table}.parquet')")
    return con


def compare_hand(folder: Path, repeats: int, threads: int) -> list[tuple[str, float, float, bool]]:
    """Each definition compiled alone and hand-written, over the same runner-shaped inputs."""
    out = []
    for key, (query, hand) in HAND.items():
        batch = compile_definitions(single(query, key), NOW)
        compiled = render(batch.ast, "duckdb")
        con = runner_inputs(folder, list(batch.event_names), threads)
        best_c = best_h = float("inf")
        for _ in range(repeats):  # interleaved, so a burst of load on a shared machine hits both
            best_c = min(best_c, timed(con, compiled, "c_out")[2])
            best_h = min(best_h, timed(con, hand, "h_out")[2])
        same = con.execute("""
            SELECT COUNT(*) FROM (SELECT pid, CAST(COALESCE(j, 'true') AS VARCHAR) v FROM c_out
                                  EXCEPT SELECT pid, CAST(n AS VARCHAR) FROM h_out)""").fetchone()
        other = con.execute("SELECT (SELECT COUNT(*) FROM c_out) = (SELECT COUNT(*) FROM h_out)").fetchone()
        out.append((key, best_c, best_h, bool(same and same[0] == 0 and other and other[0])))
        con.close()
    return out


def export_shaped(con: duckdb.DuckDBPyConnection, folder: Path) -> Path:
    """The events as `traitsync log export --format parquet` writes them (raw identifiers, no profile id).

    Profiles ``use_N`` with N % 10 <> 0 send ``userId`` ``uN``; the others (no user id in the
    store: not eligible) send ``anonymousId`` ``aN``, which the runner's store knows.
    """
    out = folder / "export"
    out.mkdir(exist_ok=True)
    target = out / "events.parquet"
    if not target.exists():  # written under another name first: a killed run leaves no half file here
        con.execute(f"""COPY (
            SELECT e."offset", 'm' || e."offset" AS "messageId", e.source_id, e.type, e.event,
                   CASE WHEN CAST(substr(pe.profile_id, 5) AS BIGINT) % 10 <> 0
                        THEN 'u' || substr(pe.profile_id, 5) END AS "userId",
                   CASE WHEN CAST(substr(pe.profile_id, 5) AS BIGINT) % 10 = 0
                        THEN 'a' || substr(pe.profile_id, 5) END AS "anonymousId",
                   e.timestamp_ms, e.received_at_ms, e.body
            FROM read_parquet('{folder}/events.parquet') e
            JOIN read_parquet('{folder}/profile_events.parquet') pe USING ("offset")
            ORDER BY e."offset") TO '{out / "events.tmp"}' (FORMAT parquet)""")
        (out / "events.tmp").rename(target)
    return out


def runner_store(con: duckdb.DuckDBPyConnection, folder: Path, path: Path) -> Any:
    """A SQLite store holding only the bench's profiles, traits and identifiers (events stay in Parquet)."""
    from traitsync.store import migrate
    from traitsync.store.database import Database

    db = Database(f"sqlite:///{path}")
    if path.exists():  # built by an earlier run over the same files
        return db
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    db = Database(f"sqlite:///{building}")
    migrate(db)
    conn = db.connect()
    conn.raw.execute("PRAGMA synchronous = OFF")  # a bench fixture: no need to survive a power cut
    try:
        profiles = con.execute(f"""SELECT profile_id, collection, 0, merged_into, 0, 0, 0, 'm', 's', 'm', 's'
                                   FROM read_parquet('{folder}/profiles.parquet')""").fetchall()
        conn.raw.executemany("INSERT INTO profiles VALUES (?,?,?,?,?,?,?,?,?,?,?)", profiles)
        traits = con.execute(f"""SELECT profile_id, key, value, 's', 0, 0
                                 FROM read_parquet('{folder}/profile_traits.parquet')""").fetchall()
        conn.raw.executemany("INSERT INTO profile_traits VALUES (?,?,?,?,?,?)", traits)
        ids = con.execute(f"""SELECT id_type, value, collection, profile_id, 's', 0, 'm', 0
                              FROM read_parquet('{folder}/profile_external_ids.parquet')
                              UNION ALL
                              SELECT 'anonymous_id', 'a' || substr(profile_id, 5), 'users', profile_id, 's', 0, 'm', 0
                              FROM read_parquet('{folder}/profiles.parquet')
                              WHERE CAST(substr(profile_id, 5) AS BIGINT) % 10 = 0""").fetchall()
        conn.raw.executemany("INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, "
                             "created_at_ms, first_message_id, event_offset) VALUES (?,?,?,?,?,?,?,?)", ids)
        conn.commit()
    finally:
        conn.close()
    building.rename(path)
    return Database(f"sqlite:///{path}")


def runner_path(con: duckdb.DuckDBPyConnection, folder: Path, query: Any,
                threads: int) -> tuple[float, float, int, bool]:
    """`traitsync compute --engine duckdb --events-from EXPORT` without publishing.

    (wall s, CPU s, values, same values as the full compute's for the profiles whose id ends in 37).
    """
    from traitsync.compute.batch.event_files import locate, validate
    from traitsync.compute.batch.runners import run_duckdb
    from traitsync.compute.batch.values import decode

    export = export_shaped(con, folder)
    db = runner_store(con, folder, folder / "store.db")
    cpu, start = cpu_seconds(), time.perf_counter()
    location = locate(str(export))
    validate(location)
    rows = run_duckdb(db, query, threads=threads, events_from=location)
    seconds, used = time.perf_counter() - start, cpu_seconds() - cpu
    sample = {(k, p, repr(v)) for k, p, v in rows if p.endswith("37")}
    expected = {(str(k), str(p), repr(decode(*x))) for k, p, *x in con.execute(
        "SELECT computation_key, pid, k, j, n, s FROM full_out WHERE pid LIKE '%37'").fetchall()}
    return seconds, used, len(rows), sample == expected


def realtime_baseline(folder: Path, n: int, defs: Definitions) -> tuple[int, float]:
    """Identity + realtime engine over the first ``n`` generated events in a SQLite store."""
    import orjson

    from traitsync.compute.realtime import RealtimeEngine
    from traitsync.identity import IdentityWorker, default_identity_config
    from traitsync.log.event_log import EventLog
    from traitsync.spec.timestamps import format_iso_ms
    from traitsync.store.database import Database

    con = duckdb.connect()
    rows = con.execute(f"""SELECT e.type, e.event, e.timestamp_ms, e.body, pe.profile_id
                           FROM read_parquet('{folder}/events.parquet') e
                           JOIN read_parquet('{folder}/profile_events.parquet') pe USING ("offset")
                           ORDER BY e."offset" LIMIT {n}""").fetchall()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/rt.db")
        log = EventLog(db)
        msgs: list[dict[str, Any]] = []
        for i, (kind, event, ts, body, pid) in enumerate(rows):
            b = orjson.loads(body)
            m: dict[str, Any] = {"type": kind, "userId": "u" + pid[4:], "messageId": f"m{i}",
                                 "timestamp": format_iso_ms(ts), "properties": b.get("properties", {})}
            if kind == "track":
                m["event"] = event
            else:
                m["name"] = "Home"
            msgs.append(m)
        for i in range(0, len(msgs), 5000):
            log.append_messages("src_web", msgs[i:i + 5000], received_at_ms=NOW)
        start = time.perf_counter()
        identity = IdentityWorker(db, default_identity_config())
        while identity.run_once(5000):
            pass
        identity.close()
        engine = RealtimeEngine(db, defs, clock=lambda: NOW / 1000)
        engine.prepare()
        while engine.run_once():
            pass
        engine.close()
        return len(rows), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01, help="1 = 10M events over 1M profiles")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-generate", action="store_true", help="reuse the Parquet files in --folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--realtime-events", type=int, default=20_000)
    parser.add_argument("--postgres", help="also run on PostgreSQL (tables copied into a fresh schema)")
    parser.add_argument("--spark", action="store_true", help="also run on Spark in local mode")
    parser.add_argument("--spark-memory", default="4g", help="spark.driver.memory for --spark (default 4g)")
    parser.add_argument("--folder", type=Path, help="keep the Parquet files here (default: a temp folder)")
    parser.add_argument("--runner", action="store_true",
                        help="also time the product path: run_duckdb over an export-shaped Parquet file "
                             "(--events-from) and a SQLite store of the profiles, values decoded in Python")
    parser.add_argument("--skip-hand", action="store_true", help="skip the compiled vs hand-written comparison")
    parser.add_argument("--skip-full", action="store_true", help="skip the full compute (and --runner)")
    args = parser.parse_args()
    events, profiles = int(10_000_000 * args.scale), max(1, int(1_000_000 * args.scale))
    defs = definitions()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="batch-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET TimeZone = 'UTC'")
    start = time.perf_counter()
    if not args.skip_generate:
        generate(con, folder, events, profiles)
        for stale in (folder / "store.db", folder / "export" / "events.parquet"):  # built from the old files
            stale.unlink(missing_ok=True)
    gen_s = time.perf_counter() - start
    views(con, folder)
    query = compile_definitions(defs, NOW)
    start = time.perf_counter()
    sql = render(query.ast, "duckdb")
    compile_s = time.perf_counter() - start
    full_s, rows, full_cpu = timed(con, sql, "full_out") if not args.skip_full else (0.0, 0, 0.0)
    print(f"## Batch engine, scale {args.scale}: {events:,} events, {profiles:,} profiles, "
          f"{len(defs.computed_traits)} traits + {len(defs.audiences)} audiences, {args.threads} threads\n")
    print(f"(load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)\n")
    print("| stage | seconds | note |\n|---|---:|---|")
    print(f"| generate Parquet | {gen_s:.1f} | not part of a compute |")
    print(f"| compile + render | {compile_s:.2f} | {len(sql):,} characters of SQL |")
    if not args.skip_full:
        print(f"| full compute (DuckDB) | {full_s:.1f} | {rows:,} (computation, profile) values; "
              f"{full_cpu:.1f} s of process CPU |")
    if args.runner and not args.skip_full:
        run_s, run_cpu, values, same = runner_path(con, folder, query, args.threads)
        print(f"| runner: `compute --engine duckdb --events-from` (no publish) | {run_s:.1f} | {values:,} values "
              f"({'same count' if values == rows else 'COUNT DIFFERS'}, sample {'identical' if same else 'DIFFERS'}); "
              f"{run_cpu:.1f} s of process CPU |")
    if not args.skip_hand:
        print("\n| definition | compiled CPU s | hand-written CPU s | ratio | same answer |\n|---|---:|---:|---:|---|")
        for key, c, h, same in compare_hand(folder, args.repeats, args.threads):
            print(f"| {key} ({HAND[key][0]}) | {c:.3f} | {h:.3f} | {c / h:.2f}x | {'yes' if same else 'NO'} |")
    if args.postgres or args.spark:
        print("\n| other engines, same query and data | seconds | CPU |\n|---|---:|---|")
    if args.postgres:
        pg_s, pg_cpu = postgres(args.postgres, con, sql_for(query, "postgres"))
        print(f"| full compute (PostgreSQL, no parallel workers) | {pg_s:.1f} | {pg_cpu:.1f} s of backend CPU |")
    if args.spark:
        spark_s, spark_cpu = spark(folder, query, args.spark_memory)
        print(f"| full compute (Spark local[2]) | {spark_s:.1f} | {spark_cpu:.1f} s of JVM CPU |")
    if args.realtime_events:
        n, seconds = realtime_baseline(folder, min(args.realtime_events, events), defs)
        print(f"\nRealtime backfill baseline (identity + engine, SQLite): {n:,} events in {seconds:.1f} s = "
              f"{n / seconds:,.0f} events/s; the full set at that rate: {events / (n / seconds):,.0f} s")


def sql_for(query: Any, dialect: str) -> str:
    return render(query.ast, dialect)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its waited-for children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def postgres(url: str, con: duckdb.DuckDBPyConnection, sql: str) -> tuple[float, float]:
    """(wall s, CPU s of the server backend): parallel workers are off so one process does all the work."""
    import psycopg

    schema = f"batch_bench_{int(time.time())}"
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
        pg.execute(f"SET search_path = {schema}")
        pg.execute("SET TimeZone = 'UTC'")
        try:
            for table in TABLES:
                cols = con.execute(f"SELECT * FROM {table} LIMIT 0").description or []
                types = {"offset": "BIGINT", "timestamp_ms": "BIGINT", "received_at_ms": "BIGINT"}
                pg.execute(f"CREATE TABLE {table} (" + ", ".join(f'"{c[0]}" {types.get(c[0], "TEXT")}' for c in cols)
                           + ")")
                with pg.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                    for row in con.execute(f"SELECT * FROM {table}").fetchall():
                        copy.write_row(row)
            pg.execute("ANALYZE")
            pg.execute("SET max_parallel_workers_per_gather = 0")
            row = pg.execute("SELECT pg_backend_pid()").fetchone()
            backend = int(row[0]) if row else 0
            cpu, start = proc_cpu(backend), time.perf_counter()
            pg.execute(f"CREATE TABLE out AS {sql}")
            return time.perf_counter() - start, proc_cpu(backend) - cpu
        finally:
            pg.execute(f"DROP SCHEMA {schema} CASCADE")


def spark(folder: Path, query: Any, memory: str) -> tuple[float, float]:
    """(wall s, CPU s of the Spark JVM) for the query, the session already started."""
    from traitsync.compute.batch.runners import spark_session

    session = spark_session("local[2]", {"spark.driver.memory": memory})
    jvm = int(session.sparkContext._gateway.proc.pid)  # the JVM pyspark launched (spark-submit execs java)
    for table in TABLES:
        session.read.parquet(str(folder / f"{table}.parquet")).createOrReplaceTempView(table)
    cpu, start = proc_cpu(jvm), time.perf_counter()
    *setup, final = render_script(query.ast, "spark")
    for statement in setup:
        session.sql(statement)
    session.sql(final).write.mode("overwrite").format("noop").save()
    return time.perf_counter() - start, proc_cpu(jvm) - cpu


if __name__ == "__main__":
    main()
