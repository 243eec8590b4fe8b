"""Render the compiler's one AST to a dialect's SQL text."""

from __future__ import annotations

from sqlglot import exp

from traitsync.compute.batch.dialects import DIALECTS
from traitsync.errors import UnsupportedInDialect


def render(query: exp.Expr, dialect: str, *, pretty: bool = False) -> str:
    """The SQL of ``query`` for ``dialect`` (duckdb, postgres or spark).

    Unsupported constructs raise at render time (``unsupported_level=RAISE``), never render
    silently wrong.
    """
    from sqlglot.errors import ErrorLevel, UnsupportedError

    cls = DIALECTS.get(dialect)
    if cls is None:
        raise UnsupportedInDialect(f"unknown SQL dialect {dialect!r}; known: {', '.join(sorted(DIALECTS))}")
    try:
        return cls().generate(query, pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise UnsupportedInDialect(f"cannot compile to {dialect}: {exc}") from None
