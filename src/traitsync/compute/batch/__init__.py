"""The batch engine: definitions compiled to SQL (DuckDB, PostgreSQL, Spark) and run in one pass.

Public API: :func:`compile_definitions` (IR to one dialect-neutral AST), :func:`render` (AST to a
dialect's SQL) and the runners in :mod:`traitsync.compute.batch.run`.
"""

from traitsync.compute.batch.compiler import compile_definitions
from traitsync.compute.batch.errors import SqlTraitError, UnsupportedConstruct
from traitsync.compute.batch.render import render

__all__ = ["SqlTraitError", "UnsupportedConstruct", "compile_definitions", "render"]
