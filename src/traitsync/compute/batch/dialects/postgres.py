"""PostgreSQL: ``json`` (not ``jsonb``) keeps each member's text as written, and ``COLLATE "C"``
orders text by code point as Python does. Casts are only reached behind the compiler's guards."""

from __future__ import annotations

from sqlglot.dialects.postgres import Postgres
from sqlglot.generators.postgres import PostgresGenerator

from traitsync.compute.batch import nodes
from traitsync.compute.batch.dialects._common import path_keys, sql_string


def _path(keys: list[str]) -> str:
    return "ARRAY[" + ", ".join(sql_string(k) for k in keys) + "]::TEXT[]"


class BatchPostgres(Postgres):
    class Generator(PostgresGenerator):
        TRANSFORMS = {
            **PostgresGenerator.TRANSFORMS,
            nodes.JsonRaw: lambda self, e: (f"NULLIF((CAST({self.sql(e, 'this')} AS JSON) #> {_path(path_keys(e))})"
                                            "::TEXT, 'null')"),
            nodes.JsonDoc: lambda self, e: f"CAST({self.sql(e, 'this')} AS JSON)",
            nodes.JsonPick: lambda self, e: (f"NULLIF(({self.sql(e, 'this')} #> "
                                             f"{_path([str(k.this) for k in e.expressions])})::TEXT, 'null')"),
            nodes.JsonUnquote: lambda self, e: f"(CAST({self.sql(e, 'this')} AS JSON) #>> '{{}}')",
            nodes.SafeDouble: lambda self, e: (f"CASE WHEN {self.sql(e, 'this')} ~ "
                                               "'^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$' THEN "
                                               f"CAST({self.sql(e, 'this')} AS DOUBLE PRECISION) END"),
            nodes.SafeBigint: lambda self, e: (f"CASE WHEN {self.sql(e, 'this')} ~ '^-?[0-9]{{1,18}}$' THEN "
                                               f"CAST({self.sql(e, 'this')} AS BIGINT) END"),
            nodes.BinaryText: lambda self, e: f'({self.sql(e, "this")} COLLATE "C")',
            nodes.OrderedConcat: lambda self, e: (f"STRING_AGG({self.sql(e, 'this')}, {self.sql(e, 'separator')} "
                                                  f"ORDER BY {self.sql(e, 'order')})"),
            nodes.IsoMs: lambda self, e: (f"CASE WHEN {self.sql(e, 'this')} ~ {sql_string(nodes.ISO_PATTERN)} THEN "
                                          f"CAST(FLOOR(EXTRACT(EPOCH FROM CAST({self.sql(e, 'this')} AS TIMESTAMPTZ))"
                                          " * 1000) AS BIGINT) END"),
        }


DIALECT = BatchPostgres
NAME = "postgres"
CTES_AS_STATEMENTS = False
