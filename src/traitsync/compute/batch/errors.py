"""Errors of the batch engine, under the project's root error."""

from __future__ import annotations

from traitsync.errors import Terminal, UnsupportedInDialect


class UnsupportedConstruct(UnsupportedInDialect):
    """A definition uses a construct the batch compiler does not compile (for any dialect)."""


class SqlTraitError(Terminal):
    """An SQL trait's query failed or returned no identifier column; the message is one line."""

    code = "sql_trait_error"


class BatchInputError(Terminal):
    """The events location given to a batch run is missing, empty or lacks a column; one line."""

    code = "batch_input_error"


__all__ = ["BatchInputError", "SqlTraitError", "UnsupportedConstruct", "UnsupportedInDialect"]
