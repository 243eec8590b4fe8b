"""Render the compiler's one AST to a dialect's SQL text."""

from __future__ import annotations

from sqlglot import exp

from traitsync.compute.batch.dialects import CTES_AS_STATEMENTS, DIALECTS
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


def render_script(query: exp.Expr, dialect: str, *, pretty: bool = False) -> list[str]:
    """The statements to run for ``dialect``: the one query, or (where CTEs are not computed once)
    one ``CACHE TABLE`` per CTE, in order, then the final select."""
    if dialect not in CTES_AS_STATEMENTS:
        return [render(query, dialect, pretty=pretty)]
    select = query.copy()
    with_ = select.args.get("with_")
    statements: list[str] = []
    if with_ is not None:
        for cte in with_.expressions:
            statements.append(f"CACHE TABLE {cte.alias} AS " + render(cte.this, dialect, pretty=pretty))
        select.set("with_", None)
    statements.append(render(select, dialect, pretty=pretty))
    return statements
