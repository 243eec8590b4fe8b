"""Options and consoles every ``traitsync`` sub-command shares, so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Config file (default: $TRAITSYNC_CONFIG or ./traitsync.yaml)."),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Store URL (default: $TRAITSYNC_DATABASE_URL or "
                 "sqlite:///.traitsync/traitsync.db)."),
]


def fail(exc: Exception) -> typer.Exit:
    """Print an error and return the exit to raise (code 2).

    The message is printed as plain text (a key path like ``[sources[0]]`` is not markup) and
    soft-wrapped, so a long file path stays whole for copying.
    """
    err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
    return typer.Exit(code=2)
