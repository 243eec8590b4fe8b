"""``traitsync compute --engine duckdb|postgres|spark``: the batch engine's command flow.

Stages, each with a progress bar: resolve identities (as ``serve`` does), read the store (DuckDB
and Spark copy the tables they read), compute (one SQL query), publish (live results at "now",
a snapshot for a past ``--as-of``).
"""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from traitsync.cli_options import console, err_console
from traitsync.definitions import Definitions
from traitsync.errors import ConfigError
from traitsync.store.database import Database


def resolve_identities(loaded: Any, db: Database, progress: Progress) -> None:
    """Bring identity resolution up to the log's head (every engine reads resolved profiles)."""
    from traitsync.identity import IdentityWorker, load_identity_config
    from traitsync.log import Checkpoints, EventLog

    identity_config = load_identity_config(loaded.document)
    head = EventLog(db).head()
    resolve = progress.add_task("resolving identities", total=head or None)
    worker = IdentityWorker(db, identity_config)
    conn = db.connect()
    while worker.run_once(5000):
        progress.update(resolve, completed=Checkpoints.get(conn, "identity"))
        conn.commit()
    progress.update(resolve, completed=head)
    worker.close()
    conn.close()


def _keys(definitions: Definitions, only: list[str]) -> list[str]:
    from traitsync.compute.batch.compiler import unsupported

    for key in only:
        if key not in definitions:
            raise ConfigError(f"--only {key}: no computed trait or audience {key!r}; defined: "
                              f"{', '.join(definitions.order) or 'none'}")
    wanted = only or list(definitions.order)
    keys = []
    for key in wanted:
        why = unsupported(definitions, key)
        if why is None:
            keys.append(key)
        elif only:
            raise ConfigError(f"--only {key}: {why}")
        else:
            err_console.print(f"[yellow]skipped {key}: {why}[/]", soft_wrap=True)
    return keys


def run_batch_compute(loaded: Any, db: Database, definitions: Definitions, engine: str, as_of_ms: int | None,
                      only: list[str], dry_run: bool, spark_master: str, *, events_from: str | None = None,
                      events_format: str = "auto") -> None:
    from traitsync.compute.batch.compiler import compile_definitions
    from traitsync.compute.batch.inputs import count_events
    from traitsync.compute.batch.publish import creation_times, publish_live, publish_snapshot
    from traitsync.compute.batch.render import render_script
    from traitsync.compute.batch.runners import ENGINES, run
    from traitsync.store import migrate

    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine}: choose realtime, {', '.join(ENGINES)}")
    now = int(time.time() * 1000)
    if as_of_ms is not None and as_of_ms > now:
        raise ConfigError("--as-of is in the future; a batch engine computes now or a past moment")
    snapshot = as_of_ms is not None
    at = as_of_ms if as_of_ms is not None else now
    location = None
    if events_from is not None:
        from traitsync.compute.batch.event_files import locate, validate

        if engine == "postgres":
            raise ConfigError("--events-from is for --engine duckdb or spark; --engine postgres reads the store")
        location = locate(events_from, events_format)
        if not location.remote:
            validate(location)
    keys = _keys(definitions, only)
    if not keys:
        raise ConfigError("nothing to compute: no computed traits or audiences the batch engine supports")
    migrate(db)
    if dry_run:
        created = {} if snapshot else creation_times(db, definitions, definitions.order, register_at_ms=None)
        query = compile_definitions(definitions, at, created_at=created, keys=keys)
        print(";\n\n".join(render_script(query.ast, engine, pretty=True)))
        return
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        resolve_identities(loaded, db, progress)
        # A snapshot never reaches a destination, so the history rule (which keeps old data from
        # flooding destinations when a definition is created) does not apply: every event counts.
        created = {} if snapshot else creation_times(db, definitions, definitions.order, register_at_ms=now)
        query = compile_definitions(definitions, at, created_at=created, keys=keys)
        if location is not None:
            reading = progress.add_task("reading profiles from the store", total=None)
        else:
            reading = progress.add_task("reading the store" if engine != "postgres" else "in the store",
                                        total=count_events(db, query.event_names, at) if engine != "postgres" else 0)
        computing = progress.add_task(f"computing ({engine}, {len(query.keys)} definitions)", total=1)
        rows = run(engine, db, query, progress=lambda n: progress.advance(reading, n), spark_master=spark_master,
                   events_from=location)
        progress.update(reading, total=progress.tasks[reading].total or 1,
                        completed=progress.tasks[reading].total or 1)
        progress.update(computing, completed=1)
        publishing = progress.add_task("publishing " + ("snapshot" if snapshot else "results"), total=len(query.keys))
        if snapshot:
            published = publish_snapshot(db, definitions, query.keys, rows, at)
        else:
            published = publish_live(db, definitions, query.keys, rows, at, engine)
        progress.update(publishing, completed=len(query.keys))
    from traitsync.spec.timestamps import format_iso_ms

    where = f"snapshot as of {format_iso_ms(at)}" if snapshot else "live results"
    table = Table(title=f"Computations ({engine}, {where})")
    table.add_column("key")
    table.add_column("class")
    table.add_column("size", justify="right")
    if not snapshot:
        table.add_column("changed", justify="right")
    for key in query.keys:
        row = [key, definitions[key].computation_class, f"{published.size.get(key, 0):,}"]
        if not snapshot:
            row.append(f"{published.changed.get(key, 0):,}")
        table.add_row(*row)
    console.print(table)
