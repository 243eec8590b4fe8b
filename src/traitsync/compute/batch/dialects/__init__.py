"""The dialects the batch compiler renders to: name -> sqlglot dialect with our override tables."""

from __future__ import annotations

from sqlglot.dialects.dialect import Dialect

from traitsync.compute.batch.dialects import duckdb, postgres, spark

DIALECTS: dict[str, type[Dialect]] = {m.NAME: m.DIALECT for m in (duckdb, postgres, spark)}
#: Dialects whose CTEs run as separate cached statements (see ``dialects/spark.py``).
CTES_AS_STATEMENTS: frozenset[str] = frozenset(m.NAME for m in (duckdb, postgres, spark) if m.CTES_AS_STATEMENTS)
#: The stock sqlglot dialect each one reads back as (the round-trip check in the tests).
STOCK: dict[str, str] = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}
