"""``traitsync privacy`` and ``traitsync tokens``: regulations and management tokens from the shell."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from traitsync.cli_options import ConfigOption, DatabaseOption, console, err_console, fail
from traitsync.errors import ConfigError, TraitsyncError

privacy_app = typer.Typer(help="Delete or suppress a person; list regulations.", no_args_is_help=True)
tokens_app = typer.Typer(help="Management API tokens: create, rotate, revoke, list.", no_args_is_help=True)

Subject = Annotated[str, typer.Argument(help="TYPE:VALUE, for example email:ada@example.com or user_id:42.")]
By = Annotated[str | None, typer.Option("--by", help="Who asked (recorded); default: the shell user.")]


def _db(config: str | None, url: str | None) -> Any:
    from traitsync.config import load_config
    from traitsync.store import Database, migrate

    try:
        durability = load_config(config).config.storage.durability if config else "normal"
        db = Database(url, durability=durability)
        migrate(db)
    except TraitsyncError as exc:
        raise fail(exc) from None
    return db


def _regulate(kind: str, subject: str, by: str | None, config: str | None, url: str | None) -> None:
    from traitsync.privacy import parse_subject, request

    try:
        id_type, value = parse_subject(subject)
    except TraitsyncError as exc:
        raise fail(exc) from None
    reg = request(_db(config, url), kind, id_type, value, f"cli:{by or getpass.getuser()}")
    what = {"delete": "deletion recorded; the workers carry it out (see `traitsync privacy list`)",
            "suppress_with_delete": "suppressed now; deletion recorded, the workers carry it out",
            "suppress": "suppressed: later events carrying it are refused at ingest",
            "unsuppress": "unsuppressed: later events carrying it are accepted again"}[kind]
    console.print(f"regulation {reg.id}: {subject.split(':', 1)[0]} {what}", soft_wrap=True, markup=False)


@privacy_app.command("delete")
def privacy_delete(
    subject: Subject,
    suppress: Annotated[bool, typer.Option("--suppress", help="Also refuse later events carrying it.")] = False,
    by: By = None, config: ConfigOption = None, database_url: DatabaseOption = None,
) -> None:
    """Delete the profile holding TYPE:VALUE: events, identifiers, traits, computed values, queued messages."""
    _regulate("suppress_with_delete" if suppress else "delete", subject, by, config, database_url)


@privacy_app.command("suppress")
def privacy_suppress(subject: Subject, by: By = None, config: ConfigOption = None,
                     database_url: DatabaseOption = None) -> None:
    """Refuse every later event carrying TYPE:VALUE at ingest (code ``suppressed``)."""
    _regulate("suppress", subject, by, config, database_url)


@privacy_app.command("unsuppress")
def privacy_unsuppress(subject: Subject, by: By = None, config: ConfigOption = None,
                       database_url: DatabaseOption = None) -> None:
    """Accept events carrying TYPE:VALUE again."""
    _regulate("unsuppress", subject, by, config, database_url)


@privacy_app.command("list")
def privacy_list(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
                 as_json: Annotated[bool, typer.Option("--json")] = False,
                 config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Regulations with who asked, when, and how far each got."""
    from traitsync.privacy import list_regulations

    regs = list_regulations(_db(config, database_url), limit)
    if as_json:
        console.print_json(json.dumps([r.as_dict() for r in regs]))
        return
    table = Table(title="Regulations")
    for column in ("id", "type", "subject", "requested by", "requested at (ms)", "status", "detail"):
        table.add_column(column)
    for r in regs:
        table.add_row(str(r.id), r.regulation_type, f"{r.id_type}:{r.value}" if r.value else f"{r.id_type}:(erased)",
                      r.requested_by, str(r.requested_at_ms), r.status, r.detail or "")
    console.print(table)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="A name for the token (recorded as who asked).")],
    role: Annotated[str, typer.Option(help="read-only or admin.")] = "read-only",
    config: ConfigOption = None, database_url: DatabaseOption = None,
) -> None:
    """Make a token (replacing one of the same name: that is a rotation); it is printed once, on stdout."""
    from traitsync.server.tokens import ROLES, create_token

    if role not in ROLES:
        raise fail(ConfigError("--role must be read-only or admin"))
    token = create_token(_db(config, database_url), name, role)
    err_console.print(f"token {name!r} ({role}) works now, in every running process within a second; "
                      "it is shown only this once:")
    typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument()], config: ConfigOption = None,
                  database_url: DatabaseOption = None) -> None:
    """Stop a stored token from working (within a second, everywhere)."""
    from traitsync.server.tokens import revoke_token

    if not revoke_token(_db(config, database_url), name):
        raise fail(ConfigError(f"no active stored token named {name!r}"))
    console.print(f"token {name!r} revoked")


@tokens_app.command("list")
def tokens_list(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Stored tokens by name and role (never the tokens themselves)."""
    from traitsync.server.tokens import list_tokens

    table = Table(title="Management tokens")
    for column in ("name", "role", "created (ms)", "revoked (ms)"):
        table.add_column(column)
    for name, role, created, revoked in list_tokens(_db(config, database_url)):
        table.add_row(name, role, str(created), "" if revoked is None else str(revoked))
    console.print(table)


@tokens_app.command("hash")
def tokens_hash() -> None:
    """Read a token on stdin and print its SHA-256, for ``token_sha256`` in traitsync.yaml."""
    from traitsync.server.tokens import token_digest

    token = typer.get_text_stream("stdin").read().strip()
    if not token:
        raise fail(ConfigError("give the token on stdin"))
    typer.echo(token_digest(token))
