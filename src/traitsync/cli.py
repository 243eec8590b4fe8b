"""The ``traitsync`` command (DESIGN 4.2)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from traitsync.cli_activation import deliveries_app, destinations_app
from traitsync.cli_options import ConfigOption, DatabaseOption, console, err_console, fail
from traitsync.cli_privacy import privacy_app, tokens_app
from traitsync.errors import ConfigError, TraitsyncError

app = typer.Typer(help="traitsync: Computed Traits and Audiences in real time, activated to your tools.",
                  no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)
log_app = typer.Typer(help="Inspect and export the event log.", no_args_is_help=True)
app.add_typer(log_app, name="log")
identity_app = typer.Typer(help="Explain, audit and rebuild the identity graph.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(destinations_app, name="destinations")
journeys_app = typer.Typer(help="Inspect journeys: users in each step and moves between steps.", no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")
app.add_typer(privacy_app, name="privacy")
app.add_typer(tokens_app, name="tokens")
sql_traits_app = typer.Typer(help="Run SQL traits (queries on your warehouse) now.", no_args_is_help=True)
app.add_typer(sql_traits_app, name="sql-traits")


_fail = fail


def _load(config: str | None) -> Any:
    from traitsync.config import load_config

    try:
        return load_config(config)
    except ConfigError as exc:
        raise _fail(exc) from None


def _database(url: str | None, durability: str = "normal") -> Any:
    from traitsync.store import Database

    try:
        return Database(url, durability=durability)
    except ConfigError as exc:
        raise _fail(exc) from None


def _store(config: str | None, url: str | None) -> Any:
    """The existing store of a command that only reads it; ``-c`` is accepted, and checked, everywhere.

    A SQLite file that is not there is an error rather than a new empty store: run from the
    wrong folder, ``log stats`` would otherwise answer "0 events" and leave a stray store behind.
    """
    durability = _load(config).config.storage.durability if config is not None else "normal"
    db = _database(url, durability)
    if db.path is not None and not db.path.exists():
        raise _fail(ConfigError(f"no store at {db.redacted_url()}: run this where traitsync serve or import "
                                "ran, or point --database-url or TRAITSYNC_DATABASE_URL at the store"))
    return db


@app.command()
def serve(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8088,
    workers: Annotated[int, typer.Option(help="API processes. Each has its own log writer: SQLite serialises "
                                               "their commits, PostgreSQL runs them side by side.")] = 1,
    role: Annotated[str, typer.Option(help="all: API and workers; api: only HTTP; worker: only workers.")] = "all",
    single_process: Annotated[bool, typer.Option(
        "--single-process", help="With --role all: run the workers inside the API process instead of in a "
        "supervised child process (simpler, but API and workers then share one core).")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error (debug adds the lines of the "
                                               "libraries: migrations, HTTP clients, the web server).")] = "info",
) -> None:
    """Run the HTTP APIs and the background workers (identity, engine, activation, delivery)."""
    import uvicorn
    from rich.text import Text

    from traitsync.logging import configure_logging
    from traitsync.server.listen import bind, serve_on
    from traitsync.validation import validate_everything

    if role not in ("all", "api", "worker"):
        raise _fail(ConfigError("--role must be all, api or worker"))
    configure_logging(log_level)
    loaded = _load(config)
    try:  # every definition, before anything is created: the same errors as `traitsync validate`
        validate_everything(loaded)
    except ConfigError as exc:
        raise _fail(exc) from None
    os.environ["TRAITSYNC_CONFIG"] = str(Path(loaded.file).resolve())
    if database_url:
        os.environ["TRAITSYNC_DATABASE_URL"] = database_url
    db = _database(database_url, loaded.config.storage.durability)
    from traitsync.store import migrate

    try:
        migrate(db)
    except TraitsyncError as exc:
        raise _fail(exc) from None
    if role == "worker":
        from traitsync.server.processes import run_workers_until_signalled

        err_console.print(f"traitsync workers running (store: {db.redacted_url()})", soft_wrap=True)
        run_workers_until_signalled(loaded, db)
        return
    try:
        sock = bind(host, port)
    except ConfigError as exc:
        raise _fail(exc) from None
    supervisor = None
    api_role = role
    if role == "all" and (not single_process or workers > 1):
        # Workers in their own process: one set for the whole deployment, and a core of their own.
        from traitsync.server.processes import WorkerSupervisor

        args = ["-c", os.environ["TRAITSYNC_CONFIG"], "--log-level", log_level]
        if database_url:
            args += ["--database-url", database_url]
        supervisor = WorkerSupervisor(args).start()
        api_role = "api"
    os.environ["TRAITSYNC_ROLE"] = api_role
    listening = Text(f"traitsync listening on http://{host}:{port} (store: {db.redacted_url()}, role: {role})")

    def announce() -> None:
        err_console.print(listening, soft_wrap=True)

    # uvicorn's own start-up lines repeat what `listening` says; its warnings and errors still show.
    server_log_level = "warning" if log_level == "info" else log_level
    try:
        serve_on(sock, uvicorn.Config("traitsync.server.factory:build_app", factory=True, workers=workers,
                                      log_level=server_log_level, loop="uvloop", http="httptools",
                                      access_log=False, timeout_graceful_shutdown=15), announce)
    finally:
        if supervisor is not None:
            supervisor.stop()


@app.command()
def validate(
    config: ConfigOption = None,
    show_ir: Annotated[bool, typer.Option("--show-ir", help="Print each definition's internal form.")] = False,
) -> None:
    """Check traitsync.yaml; errors name the file, line and key."""
    from traitsync.validation import validate_everything

    loaded = _load(config)
    try:
        report = validate_everything(loaded)
    except ConfigError as exc:
        raise _fail(exc) from None
    if show_ir:
        console.print_json(json.dumps(report.ir, default=str))
    else:
        for line in report.lines:
            console.print(f"[green]ok[/] {line}")
        console.print(f"[bold green]{loaded.file} is valid.[/]")


@app.command()
def schema() -> None:
    """Print the JSON Schema of traitsync.yaml (for editors and CI checks)."""
    from traitsync.validation import full_json_schema

    sys.stdout.write(json.dumps(full_json_schema(), indent=2) + "\n")


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="JSONL, gzipped JSONL (.jsonl.gz) or Parquet files.",
                                                exists=True, dir_okay=False)],
    source: Annotated[str | None, typer.Option(help="Source id to record (default: the first source).")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Load files of Segment messages into the log, with the API's validation and dedup."""
    from traitsync.identity import load_identity_config
    from traitsync.identity.extract import identifier_reader
    from traitsync.ingest.files import import_files
    from traitsync.log import EventLog

    loaded = _load(config)
    try:
        identity = load_identity_config(loaded.document)
    except ConfigError as exc:
        raise _fail(exc) from None
    sources = {s.id for s in loaded.config.sources}
    source_id = source or (loaded.config.sources[0].id if loaded.config.sources else None)
    if source_id is None or source_id not in sources:
        raise _fail(ConfigError(f"unknown source {source_id!r}; known: {', '.join(sorted(sources)) or 'none'}",
                                file=loaded.file, key="sources"))
    event_log = EventLog(_database(database_url, loaded.config.storage.durability))
    total = sum(p.stat().st_size for p in paths)
    with Progress(TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TextColumn("messages"),
                  TimeElapsedColumn(), console=err_console) as progress:
        task = progress.add_task("import", total=None)
        summary = import_files(event_log, source_id, list(paths), progress=lambda n: progress.advance(task, n),
                               readers=[identifier_reader(identity)])
    table = Table(title=f"Import into {source_id} ({len(paths)} file(s), {total:,} bytes)")
    table.add_column("outcome")
    table.add_column("messages", justify="right")
    table.add_row("read", f"{summary.read:,}")
    table.add_row("stored", f"{summary.accepted:,}")
    table.add_row("duplicates (already stored)", f"{summary.duplicates:,}")
    for code, count in sorted(summary.rejected.items()):
        table.add_row(f"rejected: {code}", f"{count:,}")
    console.print(table)
    for line in summary.bad_lines:
        err_console.print(f"[yellow]{line}[/]")


@log_app.command("export")
def log_export(
    output: Annotated[Path | None,
                      typer.Option("--output", "-o", help="File to write (JSONL: default stdout).")] = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Only events received at or after this ISO-8601 time.")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write the log's messages out, oldest first."""
    from traitsync.log import EventLog
    from traitsync.log.export import export_jsonl, export_parquet
    from traitsync.spec.timestamps import parse_iso_ms

    since_ms = None
    if since is not None:
        since_ms = parse_iso_ms(since)
        if since_ms is None:
            raise _fail(ConfigError(f"--since {since!r} is not an ISO-8601 time"))
    if format not in ("jsonl", "parquet"):
        raise _fail(ConfigError("--format must be jsonl or parquet"))
    if format == "parquet" and output is None:
        raise _fail(ConfigError("--format parquet needs --output FILE"))
    event_log = EventLog(_store(config, database_url))
    head = event_log.head()
    # The bar goes to stderr: stdout may be the JSONL itself.
    with Progress(TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(), TextColumn("log offsets"),
                  TimeElapsedColumn(), console=err_console) as progress:
        task = progress.add_task("export", total=head or None)

        def position(offset: int) -> None:
            progress.update(task, completed=offset)

        if format == "parquet":
            assert output is not None
            count = export_parquet(event_log, output, since_ms, position)
        elif output is None:
            count = export_jsonl(event_log, sys.stdout.buffer, since_ms, position)
            sys.stdout.flush()
        else:
            with output.open("wb") as handle:
                count = export_jsonl(event_log, handle, since_ms, position)
        progress.update(task, completed=head)
    err_console.print(f"exported {count:,} events")


@log_app.command("stats")
def log_stats(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Counts of stored events and of refusals by code, and the size of every table."""
    from traitsync.log import EventLog
    from traitsync.retention import table_sizes

    db = _store(config, database_url)
    event_log = EventLog(db)
    table = Table(title="Event log")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events stored", f"{event_log.count():,}")
    for code, count in event_log.rejection_counts().items():
        table.add_row(f"rejected: {code}", f"{count:,}")
    console.print(table)
    sizes = Table(title="Tables (retention: see docs/retention.md)")
    for column, justify in (("table", "left"), ("rows", "right"), ("size", "right")):
        sizes.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, rows, size in table_sizes(db):
        sizes.add_row(name, f"{rows:,}", "" if size is None else _bytes(size))
    console.print(sizes)


def _bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


@identity_app.command("explain")
def identity_explain(
    identifier: Annotated[str, typer.Argument(help="TYPE:VALUE, for example email:jane@example.com.")],
    collection: Annotated[str, typer.Option(help="users or accounts.")] = "users",
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """How the profile holding TYPE:VALUE was built, and why any identifier was refused."""
    from traitsync.identity import explain

    id_type, sep, value = identifier.partition(":")
    if not sep or not id_type or not value:
        raise _fail(ConfigError(f"expected TYPE:VALUE, got {identifier!r}"))
    explanation = explain(_store(config, database_url), id_type, value, collection)
    if as_json:
        console.print_json(json.dumps(explanation.data, default=str))
    else:
        console.print(explanation.tree)
    if explanation.profile_id is None:  # the tree above says why (never seen, or refused by a rule)
        err_console.print(f"no profile holds {identifier} in {collection}")
        raise typer.Exit(code=1)


@identity_app.command("violations")
def identity_violations(
    samples: Annotated[int, typer.Option(help="Samples shown per category.")] = 5,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Identity rule violations by Segment's Insights categories, with counts and samples."""
    from traitsync.identity import violations, violations_table

    console.print(violations_table(violations(_store(config, database_url), samples=samples)))


@identity_app.command("rebuild")
def identity_rebuild(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Replay the log into a fresh graph and check it reproduces the live one exactly."""
    from traitsync.identity import load_identity_config, rebuild

    loaded = _load(config)
    with console.status("replaying the event log into a fresh identity graph ..."):
        report = rebuild(_database(database_url), load_identity_config(loaded.document))
    console.print(report.table())
    if not report.equal:
        raise typer.Exit(code=1)


@app.command()
def compute(
    engine: Annotated[str, typer.Option(help="realtime (incremental, the default), or a batch SQL engine: duckdb "
                                             "(embedded), postgres (inside a PostgreSQL store), spark (pyspark extra).")
                      ] = "realtime",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate at this ISO-8601 moment instead of now. "
                                                             "Batch engines: a past moment is written to a snapshot "
                                                             "that destinations never receive.")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Batch engines: compute only this key (repeatable; what it reads is computed too).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Batch engines: print the SQL and exit.")] = False,
    spark_master: Annotated[str, typer.Option(help="Spark master URL for --engine spark.")] = "local[1]",
    events_from: Annotated[str | None, typer.Option(
        "--events-from", help="duckdb/spark: read the events from this Parquet or Delta location (a folder, file or "
                              "glob with the columns of `log export --format parquet`; Spark: any URI) instead of "
                              "the store's log.")] = None,
    events_format: Annotated[str, typer.Option(
        "--events-format", help="auto (Delta when the folder has _delta_log/), parquet or delta.")] = "auto",
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Resolve identities and compute every trait and audience over the log, once, then exit.

    The same work serve does continuously, for cron-style runs and for watching a backfill: new or changed definitions backfill from the log with a progress bar, and an interrupted run resumes where its last commit left off. With a batch engine (duckdb, postgres, spark) every definition is compiled to one SQL query and computed in one pass over the log.
    """  # noqa: E501 (one line per paragraph: the help wraps it to the terminal)
    from traitsync.definitions import load_definitions
    from traitsync.spec.timestamps import parse_iso_ms

    clock_ms = None
    if as_of is not None:
        clock_ms = parse_iso_ms(as_of)
        if clock_ms is None:
            raise _fail(ConfigError(f"--as-of {as_of!r} is not an ISO-8601 time"))
    loaded = _load(config)
    try:
        definitions = load_definitions(loaded.document)
    except ConfigError as exc:
        raise _fail(exc) from None
    db = _database(database_url, loaded.config.storage.durability)
    if engine != "realtime":
        from traitsync.cli_batch import run_batch_compute

        try:
            run_batch_compute(loaded, db, definitions, engine, clock_ms, only or [], dry_run, spark_master,
                              events_from=events_from, events_format=events_format)
        except TraitsyncError as exc:
            raise _fail(exc) from None
        return
    if only or dry_run or events_from:
        raise _fail(ConfigError("--only, --dry-run and --events-from are for the batch engines "
                                "(--engine duckdb|postgres|spark)"))
    _compute_realtime(loaded, db, definitions, clock_ms, as_of)


def _compute_realtime(loaded: Any, db: Any, definitions: Any, clock_ms: int | None, as_of: str | None) -> None:
    from traitsync.cli_batch import resolve_identities
    from traitsync.compute.realtime import RealtimeEngine, computation_summaries
    from traitsync.log import Checkpoints, EventLog

    head = EventLog(db).head()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        resolve_identities(loaded, db, progress)
        conn = db.connect()
        backfill = progress.add_task("backfilling new definitions", total=None)

        def on_backfill(done: int, total: int) -> None:
            progress.update(backfill, completed=done, total=total)

        fixed_ms = clock_ms

        def clock() -> float:
            return fixed_ms / 1000 if fixed_ms is not None else time.time()

        realtime = RealtimeEngine(db, definitions, progress=on_backfill, clock=clock)
        realtime.prepare()
        progress.update(backfill, total=progress.tasks[backfill].total or 0)
        stream = progress.add_task("computing", total=head or None)
        while realtime.run_once():
            progress.update(stream, completed=Checkpoints.get(conn, "realtime"))
            conn.commit()
        progress.update(stream, completed=head)
        fired = realtime.fire_due()
        realtime.close()
        conn.close()
    table = Table(title=f"Computations{' as of ' + as_of if as_of else ''} ({fired} time-driven changes fired)")
    for column in ("key", "class", "status", "size"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for summary in computation_summaries(db, definitions):
        table.add_row(summary["key"], summary["class"], summary["status"], f"{summary['size']:,}")
    console.print(table)


@app.command()
def preview(
    key: Annotated[str, typer.Argument(help="The audience or computed trait key.")],
    sample: Annotated[int, typer.Option(help="How many members or values to show.")] = 10,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Preview at this past ISO-8601 moment (a snapshot from compute --as-of, else computed now "
        "with DuckDB).")] = None,
    overlap: Annotated[str | None, typer.Option(help="Another audience (or trait): how many members both have.")
                       ] = None,
    format: Annotated[str, typer.Option("--format", help="table, csv (one row per member) or json.")] = "table",
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Size, sample members (by user_id and email; accounts by group_id and name), identifier mix and overlap of an
    audience or computed trait."""
    from traitsync.compute.batch.preview import build_preview, members_csv, public
    from traitsync.compute.realtime import computation_summaries
    from traitsync.definitions import load_definitions
    from traitsync.spec.timestamps import parse_iso_ms

    if format not in ("table", "csv", "json"):
        raise _fail(ConfigError("--format must be table, csv or json"))
    loaded = _load(config)
    try:
        definitions = load_definitions(loaded.document)
    except ConfigError as exc:
        raise _fail(exc) from None
    resolved = definitions.resolve(key)
    if resolved is None:
        raise _fail(ConfigError(f"no computed trait or audience {key!r} (nor journey step <journey>.<step>); defined: "
                                f"{', '.join(definitions.order) or 'none'}", file=loaded.file))
    key = resolved
    if overlap is not None:
        resolved_overlap = definitions.resolve(overlap)
        if resolved_overlap is None:
            raise _fail(ConfigError(f"no computed trait or audience {overlap!r}; defined: "
                                    f"{', '.join(definitions.order) or 'none'}", file=loaded.file))
        overlap = resolved_overlap
    as_of_ms = None
    if as_of is not None:
        as_of_ms = parse_iso_ms(as_of)
        if as_of_ms is None:
            raise _fail(ConfigError(f"--as-of {as_of!r} is not an ISO-8601 time"))
    db = _store(config, database_url)
    try:
        result = build_preview(db, definitions, key, as_of_ms=as_of_ms, overlap=overlap, sample=sample)
    except TraitsyncError as exc:
        raise _fail(exc) from None
    if format == "csv":
        sys.stdout.write(members_csv(result))
        return
    if format == "json":
        sys.stdout.write(json.dumps(public(result), indent=2) + "\n")
        return
    if as_of is None:
        status = next((s["status"] for s in computation_summaries(db, definitions) if s["key"] == key), "?")
        head = f"{key}: {status}, size {result['size']:,}"
    else:
        head = f"{key} as of {as_of}: size {result['size']:,}"
    console.print(head, soft_wrap=True, markup=False)
    if result["size"]:
        shares = ", ".join(f"{t} {share:.0%}" for t, share in result["identifier_share"].items() if share)
        console.print(f"identifiers: {shares}", soft_wrap=True, markup=False)
    if "overlap" in result:
        o = result["overlap"]
        console.print(f"overlap with {o['key']} (size {o['size']:,}): {o['both']:,} in both, "
                      f"{o['share_of_this']:.0%} of {key}", soft_wrap=True, markup=False)
    if not result["sample"]:
        return
    table = Table()
    account = result["level"] == "account"
    table.add_column("group_id" if account else "user_id", overflow="fold")
    table.add_column("name" if account else "email", overflow="fold")
    table.add_column("value", overflow="fold")
    for row in result["sample"]:
        value = row.get("value", True)
        if account:
            table.add_row(row["group_id"], row["name"], json.dumps(value))
            continue
        who = row["user_id"] or (f"(anonymous_id:{row['anonymous_id']})" if row["anonymous_id"] else "")
        table.add_row(who, row["email"], json.dumps(value))
    console.print(table)


@journeys_app.command("show")
def journeys_show(
    key: Annotated[str, typer.Argument(help="The journey key.")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Users in each step of a journey now, and how many moved along each edge."""
    from traitsync.compute.realtime import journey_report
    from traitsync.definitions import load_definitions

    loaded = _load(config)
    try:
        definitions = load_definitions(loaded.document)
    except ConfigError as exc:
        raise _fail(exc) from None
    if key not in definitions.journeys:
        raise _fail(ConfigError(f"no journey {key!r}; defined: {', '.join(definitions.journeys) or 'none'}",
                                file=loaded.file))
    report = journey_report(_store(config, database_url), definitions, key)
    console.print(f"{report['name'] or key} ({key})", markup=False)
    steps = Table("step", "kind", "after", "users now", "ever joined", "status", "key on profiles")
    for step in report["steps"]:
        after = ", ".join(step["after"]) + (f" + wait {step['wait_seconds']}s" if step["wait_seconds"] else "")
        steps.add_row(step["key"], step["kind"] + (f" ({step['split']})" if step["split"] else ""), after,
                      f"{step['users']:,}", f"{step['ever_joined']:,}", step["status"], step["computation_key"])
    console.print(steps)
    moves = Table("from", "to", "users moved")
    for move in report["moves"]:
        moves.add_row(move["from"], move["to"], f"{move['users']:,}")
    console.print(moves)


def _who(identifiers: list[Any], profile_id: str) -> tuple[str, str]:
    """A profile's user_id and email as a user knows them; without a user_id, its first other identifier."""
    values: dict[str, list[str]] = {}
    for ext in identifiers:
        values.setdefault(ext.id_type, []).append(ext.value)
    emails = values.get("email", [])
    email = emails[0] + (f" (+{len(emails) - 1})" if len(emails) > 1 else "") if emails else ""
    if "user_id" in values:
        return values["user_id"][0], email
    other = next((f"{t}:{v[0]}" for t, v in values.items() if t != "email"), None)
    return f"({other or profile_id})", email


@sql_traits_app.command("run")
def sql_traits_run(
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this SQL trait (repeatable).")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Run SQL traits now (serve runs them on their schedule): query, match profiles, publish changes."""
    from traitsync.compute.batch.sql_schedule import SqlTraitScheduler
    from traitsync.compute.batch.sql_traits import load_sql_traits
    from traitsync.store import migrate

    loaded = _load(config)
    try:
        traits = load_sql_traits(loaded.document)
    except ConfigError as exc:
        raise _fail(exc) from None
    known = {t.key for t in traits}
    for key in only or []:
        if key not in known:
            raise _fail(ConfigError(f"no SQL trait {key!r}; defined: {', '.join(sorted(known)) or 'none'}"))
    db = _database(database_url, loaded.config.storage.durability)
    migrate(db)
    scheduler = SqlTraitScheduler(db, [t for t in traits if not only or t.key in only])
    table = Table(title="SQL traits")
    for column in ("key", "rows", "matched", "unmatched", "changed"):
        table.add_column(column, justify="left" if column == "key" else "right")
    failed = False
    for trait in scheduler.traits:
        with err_console.status(f"running {trait.key} ..."):
            try:
                from traitsync.compute.batch.sql_traits import run_sql_trait

                result = run_sql_trait(db, trait)
            except TraitsyncError as exc:
                err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
                failed = True
                continue
        scheduler.record(trait, int(time.time() * 1000), None)
        table.add_row(trait.key, f"{result.rows:,}", f"{result.matched:,}", f"{result.unmatched:,}",
                      f"{result.changed:,}")
    console.print(table)
    if failed:
        raise typer.Exit(code=2)


@app.command()
def demo() -> None:
    """Run the whole flow end to end on the embedded default and show what happened.

    The store is kept in .traitsync/demo/ afterwards, to explore with the other commands.
    """
    from traitsync.demo import run_demo

    try:
        run_demo(console)
    except TraitsyncError as exc:
        raise _fail(exc) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
