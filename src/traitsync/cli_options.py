"""Options and consoles every ``traitsync`` sub-command shares, so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

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
