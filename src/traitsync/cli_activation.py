"""``traitsync deliveries status|replay`` and ``traitsync destinations list|check|sync``.

Registered in ``cli.py`` with::

    from traitsync.cli_activation import deliveries_app, destinations_app
    app.add_typer(deliveries_app, name="deliveries"); app.add_typer(destinations_app, name="destinations")

Both work against the store directly, so they run beside a live ``traitsync serve`` (the
outbox's leases and per-key order make a second delivering process safe).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from traitsync.cli_options import ConfigOption, DatabaseOption, console, fail
from traitsync.errors import ConfigError, TraitsyncError

deliveries_app = typer.Typer(help="Delivery status and dead-letter replay.", no_args_is_help=True)
destinations_app = typer.Typer(help="Destinations: the adapter catalog, credential checks, list syncs.",
                               no_args_is_help=True)
STATES = ("pending", "in_flight", "retry_wait", "delivered", "dead", "filtered")


_fail = fail


def _services(config: str | None, database_url: str | None) -> Any:
    """The stages as ``serve`` builds them (``server.assemble.build_stages``), on the given store."""
    from traitsync.server.assemble import build_stages
    from traitsync.server.project import load_project
    from traitsync.store import Database, migrate

    try:
        project = load_project(config)
        db = Database(database_url, durability=project.loaded.config.storage.durability)
        migrate(db)
        return build_stages(project, db)
    except TraitsyncError as exc:
        raise _fail(exc) from None


def parse_when(value: str | None, default_ms: int) -> int:
    """ISO-8601 (``Z`` allowed), epoch milliseconds, or a duration ago (``2h``, ``7d``)."""
    if value is None:
        return default_ms
    text = value.strip()
    if text.isdigit():
        return int(text)
    if text[-1:] in ("s", "m", "h", "d") and text[:-1].replace(".", "", 1).isdigit():
        from traitsync.destinations.config import parse_duration

        return int(time.time() * 1000 - parse_duration(text) * 1000)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise _fail(ConfigError(f"{value!r} is not ISO-8601, epoch milliseconds or a duration like 2h")) from None


@deliveries_app.command("status")
def status(config: ConfigOption = None, database_url: DatabaseOption = None,
           since: Annotated[str, typer.Option(help="Overview window start (ISO, epoch ms or e.g. 24h).")] = "24h",
           ) -> None:
    """Per destination: outbox states now, and the delivery overview since --since."""
    from traitsync.delivery.outbox import Outbox
    from traitsync.delivery.overview import delivery_overview

    services = _services(config, database_url)
    db = services.identity.db
    since_ms = parse_when(since, 0)
    conn = db.connect()
    try:
        outbox = Outbox(db)
        table = Table(title="Deliveries")
        for col in ("destination", "mode", "rate/s", *STATES, "failed codes"):
            table.add_column(col, justify="left" if col in ("destination", "mode", "failed codes") else "right")
        overview = delivery_overview(conn, since_ms=since_ms, until_ms=int(time.time() * 1000) + 1)
        for dest in services.project.activation.destinations:
            counts = outbox.state_counts(conn, dest.id)
            view = overview.get(dest.id)
            codes = ", ".join(f"{c}: {n}" for c, n in sorted(view.failed_delivery.items())) if view else ""
            rate = services.delivery[dest.id].target.rate
            table.add_row(dest.id, dest.mode, f"{rate:g}", *(str(counts.get(s, 0)) for s in STATES), codes)
        conn.commit()
    finally:
        conn.close()
    console.print(table)


@deliveries_app.command("replay")
def replay(destination: Annotated[str, typer.Option("--destination", "-d", help="Destination id.")],
           config: ConfigOption = None, database_url: DatabaseOption = None,
           since: Annotated[str | None, typer.Option(help="Died at or after (ISO, epoch ms or e.g. 2h).")] = None,
           until: Annotated[str | None, typer.Option(help="Died before (ISO, epoch ms or e.g. 1h).")] = None,
           code: Annotated[str | None, typer.Option(help="Only dead letters with this code (e.g. 400).")] = None,
           ) -> None:
    """Put dead letters back in the queue; they are sent again with their original messageIds."""
    from traitsync.delivery.outbox import Outbox

    services = _services(config, database_url)
    if destination not in services.project.activation.by_id():
        raise _fail(ConfigError(f"no destination {destination!r} in the config"))
    n = Outbox(services.identity.db).replay(destination, parse_when(since, 0),
                                   parse_when(until, int(time.time() * 1000) + 1), code)
    console.print(f"re-queued {n} dead letter{'s' if n != 1 else ''} for {destination}")


@destinations_app.command("sync")
def sync(destination_id: Annotated[str, typer.Argument(help="A list destination's id.")],
         config: ConfigOption = None, database_url: DatabaseOption = None,
         deliver: Annotated[bool, typer.Option(help="Also deliver now (else a running server does).")] = True,
         timeout: Annotated[float, typer.Option(help="Seconds to spend delivering.")] = 60.0) -> None:
    """Sync a list destination's audiences now, whatever its schedule says."""
    services = _services(config, database_url)
    try:
        results = services.lists.sync_now(destination_id)
    except KeyError:
        raise _fail(ConfigError(f"{destination_id!r} is not a list destination in the config")) from None
    table = Table(title=f"List sync: {destination_id}")
    for col in ("audience", "created", "adds", "removes", "messages", "note"):
        table.add_column(col)
    for r in results:
        table.add_row(r.computation_key, "yes" if r.created else "", str(r.adds), str(r.removes), str(r.messages),
                      r.skipped or "")
    console.print(table)
    if deliver:
        worker = services.delivery[destination_id]
        settled = worker.drain(timeout, include_retries=False)
        worker.close()
        console.print(f"delivered {settled} message{'s' if settled != 1 else ''}")


@destinations_app.command("status")
def destinations_status(destination_id: Annotated[str | None, typer.Argument(help="One destination (default: all).")]
                        = None, config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Where each list destination's audiences stand: created, identifiers on the list, held and why."""
    from traitsync.activation.list_status import list_statuses

    services = _services(config, database_url)
    dests = [d for d in services.project.activation.list_destinations if destination_id in (None, d.id)]
    if destination_id is not None and not dests:
        raise _fail(ConfigError(f"{destination_id!r} is not a list destination in the config"))
    table = Table(title="List destinations")
    for col in ("destination", "audience", "state", "list id", "on list", "last sync", "next sync", "note"):
        table.add_column(col, justify="right" if col == "on list" else "left", overflow="fold")
    conn = services.identity.db.connect()
    try:
        for dest in dests:
            for st in list_statuses(conn, dest.id):
                table.add_row(dest.id, st.audience, st.state, st.list_id or "-", f"{st.on_list:,}",
                              _when(st.last_sync_at_ms), _when(st.next_sync_at_ms), st.held_reason or "")
        conn.commit()
    finally:
        conn.close()
    console.print(table)


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@destinations_app.command("list")
def list_adapters() -> None:
    """Every adapter: what it sends, its default cap and batch size (list destinations: members per
    operation), the floor of its list sync cadence ("every") and its minimum audience size, its
    required settings."""
    from traitsync.destinations.registry import ADAPTERS, default_rate

    table = Table(title="Destination adapters (kind: in traitsync.yaml)")
    table.add_column("kind", overflow="fold")
    table.add_column("modes", no_wrap=True)
    table.add_column("cap/s", justify="right")
    table.add_column("batch", justify="right")
    table.add_column("every", no_wrap=True)
    table.add_column("min", justify="right", no_wrap=True)
    table.add_column("required settings")
    for slug, adapter in sorted(ADAPTERS.items()):
        required = [name for name, f in adapter.settings_model.model_fields.items() if f.is_required()]
        batch = adapter.list_batch if adapter.modes == {"list"} else adapter.max_batch
        cadence = f"{_every(adapter.min_list_interval_s)}+" if "list" in adapter.modes else "-"
        minimum = f"{adapter.min_list_size:,}" if adapter.min_list_size else "-"
        table.add_row(slug, ", ".join(sorted(adapter.modes)), f"{default_rate(adapter):g}", f"{batch:,}",
                      cadence, minimum, " ".join(required) or "-")
    console.print(table)


def _every(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@destinations_app.command("check")
def check(destination_id: Annotated[str, typer.Argument(help="A destination's id in the config.")],
          config: ConfigOption = None) -> None:
    """Check a destination's settings and credentials against its endpoint."""
    from traitsync.delivery.check import check_destination
    from traitsync.server.project import load_project

    try:
        project = load_project(config)
    except TraitsyncError as exc:
        raise _fail(exc) from None
    target = project.target(destination_id)
    if target is None:
        raise _fail(ConfigError(f"no destination {destination_id!r} in the config"))
    result = check_destination(target)
    for req in result.requests:
        status = req["status"] if req["status"] is not None else req["error"]
        console.print(f"  {req['purpose']}: {req['method']} {req['url']} -> {status} ({req['duration_ms']} ms)",
                      soft_wrap=True, markup=False)
    if result.ok:
        console.print(f"OK: {result.verdict}", markup=False)
    else:
        console.print(f"FAILED: {result.verdict}", markup=False)
        raise typer.Exit(1)


def _app() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)
    app.add_typer(deliveries_app, name="deliveries")
    app.add_typer(destinations_app, name="destinations")
    return app


if __name__ == "__main__":
    _app()()
