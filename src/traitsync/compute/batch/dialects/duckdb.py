"""DuckDB: JSON functions are built in; TRY_CAST makes the number and time parsers total."""

from __future__ import annotations

from sqlglot.dialects.duckdb import DuckDB
from sqlglot.generators.duckdb import DuckDBGenerator

from traitsync.compute.batch import nodes
from traitsync.compute.batch.dialects._common import path_keys, sql_string


def _json_path(keys: list[str]) -> str:
    return "$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)


class BatchDuckDB(DuckDB):
    class Generator(DuckDBGenerator):
        TRANSFORMS = {
            **DuckDBGenerator.TRANSFORMS,
            nodes.JsonRaw: lambda self, e: (f"NULLIF(CAST(JSON_EXTRACT({self.sql(e, 'this')}, "
                                            f"{sql_string(_json_path(path_keys(e)))}) AS VARCHAR), 'null')"),
            nodes.JsonDoc: lambda self, e: (f"JSON_EXTRACT({self.sql(e, 'this')}, ["
                                            + ", ".join(sql_string(_json_path([str(k.this) for k in t.expressions]))
                                                        for t in e.expressions) + "])"),
            nodes.JsonPick: lambda self, e: (f"NULLIF(CAST({self.sql(e, 'this')}[{int(e.args['index'].this) + 1}] "
                                             "AS VARCHAR), 'null')"),
            # A JSON string without escapes is its text between the quotes; only escapes need a parse.
            nodes.JsonUnquote: lambda self, e: (f"CASE WHEN CONTAINS({self.sql(e, 'this')}, '\\') THEN "
                                                f"JSON_EXTRACT_STRING({self.sql(e, 'this')}, '$') ELSE "
                                                f"{self.sql(e, 'this')}[2:-2] END"),
            nodes.SafeDouble: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS DOUBLE)",
            # TRY_CAST rounds '2.5' to 3: a fraction or an exponent is not an integer literal.
            nodes.SafeBigint: lambda self, e: (f"CASE WHEN {self.sql(e, 'this')} LIKE '%.%' OR {self.sql(e, 'this')} "
                                               f"LIKE '%e%' OR {self.sql(e, 'this')} LIKE '%E%' THEN NULL ELSE "
                                               f"TRY_CAST({self.sql(e, 'this')} AS BIGINT) END"),
            nodes.BinaryText: lambda self, e: self.sql(e, "this"),
            nodes.OrderedConcat: lambda self, e: (f"STRING_AGG({self.sql(e, 'this')}, {self.sql(e, 'separator')} "
                                                  f"ORDER BY {self.sql(e, 'order')})"),
            nodes.IsoMs: lambda self, e: (f"CASE WHEN REGEXP_MATCHES({self.sql(e, 'this')}, "
                                          f"{sql_string(nodes.ISO_PATTERN)}) THEN EPOCH_MS(TRY_CAST("
                                          f"{self.sql(e, 'this')} AS TIMESTAMPTZ)) END"),
        }


DIALECT = BatchDuckDB
NAME = "duckdb"
CTES_AS_STATEMENTS = False
