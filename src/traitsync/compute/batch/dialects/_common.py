"""Render helpers shared by the dialect modules (each dialect picks the ones it needs)."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.generator import Generator

from traitsync.errors import UnsupportedInDialect

Render = Callable[[Generator, exp.Expr], str]


def path_keys(node: exp.Expr) -> list[str]:
    return [str(e.this) for e in node.expressions]


def sql_string(text: str) -> str:
    """A standard SQL string literal (quotes doubled; no backslash escapes)."""
    return "'" + text.replace("'", "''") + "'"


def unsupported(construct: str, dialect: str) -> Render:
    """A TRANSFORMS entry that refuses, naming the construct and the dialect."""

    def render(self: Generator, node: exp.Expr) -> str:
        raise UnsupportedInDialect(f"{construct} cannot be compiled to {dialect}")

    return render
