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

from traitsync.cli_activation import deliveries_app, destinations_app
from traitsync.cli_options import ConfigOption, DatabaseOption, console, err_console, fail
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
    from traitsync.ingest.files import import_files
    from traitsync.log import EventLog

    loaded = _load(config)
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
        summary = import_files(event_log, source_id, list(paths), progress=lambda n: progress.advance(task, n))
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
    event_log = EventLog(_store(config, database_url))
    if format == "parquet":
        if output is None:
            raise _fail(ConfigError("--format parquet needs --output FILE"))
        count = export_parquet(event_log, output, since_ms)
    elif format == "jsonl":
        if output is None:
            count = export_jsonl(event_log, sys.stdout.buffer, since_ms)
            sys.stdout.flush()
        else:
            with output.open("wb") as handle:
                count = export_jsonl(event_log, handle, since_ms)
    else:
        raise _fail(ConfigError("--format must be jsonl or parquet"))
    err_console.print(f"exported {count:,} events")


@log_app.command("stats")
def log_stats(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Counts of stored events and of refusals by code (whole requests and single messages)."""
    from traitsync.log import EventLog

    event_log = EventLog(_store(config, database_url))
    table = Table(title="Event log")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events stored", f"{event_log.count():,}")
    for code, count in event_log.rejection_counts().items():
        table.add_row(f"rejected: {code}", f"{count:,}")
    console.print(table)


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
    engine: Annotated[str, typer.Option(help="realtime (built); duckdb, postgres and spark are the batch "
                                             "engine, not built yet.")] = "realtime",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate at this ISO-8601 moment instead of now "
                                                             "(exits due by then are fired).")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Resolve identities and compute every trait and audience over the log, once, then exit.

    The same work serve does continuously, for cron-style runs and for watching a backfill: new or changed definitions backfill from the log with a progress bar, and an interrupted run resumes where its last commit left off.
    """  # noqa: E501 (one line per paragraph: the help wraps it to the terminal)
    from traitsync.compute.realtime import RealtimeEngine, computation_summaries
    from traitsync.definitions import load_definitions
    from traitsync.identity import IdentityWorker, load_identity_config
    from traitsync.log import Checkpoints, EventLog
    from traitsync.spec.timestamps import parse_iso_ms

    if engine != "realtime":
        raise _fail(ConfigError(f"--engine {engine}: the batch SQL engine (duckdb, postgres, spark) is not built "
                                "yet; use --engine realtime"))
    clock_ms = None
    if as_of is not None:
        clock_ms = parse_iso_ms(as_of)
        if clock_ms is None:
            raise _fail(ConfigError(f"--as-of {as_of!r} is not an ISO-8601 time"))
    loaded = _load(config)
    try:
        definitions = load_definitions(loaded.document)
        identity_config = load_identity_config(loaded.document)
    except ConfigError as exc:
        raise _fail(exc) from None
    db = _database(database_url, loaded.config.storage.durability)
    head = EventLog(db).head()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        resolve = progress.add_task("resolving identities", total=head or None)
        worker = IdentityWorker(db, identity_config)
        conn = db.connect()
        while worker.run_once(5000):
            progress.update(resolve, completed=Checkpoints.get(conn, "identity"))
            conn.commit()
        progress.update(resolve, completed=head)
        worker.close()
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
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Size, status and a sample of an audience or computed trait, as computed so far."""
    from traitsync.compute.realtime import preview as preview_computation
    from traitsync.definitions import load_definitions

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
    from traitsync.profiles import ProfileStore

    db = _store(config, database_url)
    result = preview_computation(db, definitions, key, sample)
    store = ProfileStore(db)
    console.print(f"{key}: {result.get('status', '?')}, size {result.get('size', 0):,}", soft_wrap=True,
                  markup=False)
    if not result["sample"]:
        return
    table = Table()
    table.add_column("user_id", overflow="fold")
    table.add_column("email", overflow="fold")
    table.add_column("value", overflow="fold")
    rows = [(*_who(store.external_ids(row["profile_id"]), row["profile_id"]), json.dumps(row["value"]))
            for row in result["sample"]]
    for row in sorted(rows):
        table.add_row(*row)
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
