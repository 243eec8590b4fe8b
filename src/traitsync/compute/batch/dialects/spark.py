"""Spark SQL (Spark 4): ``parse_json`` / ``variant_get`` keep a JSON member's type, which
``get_json_object`` loses (it returns ``5`` for both ``5`` and ``"5"``); try_* functions keep
parsers total under ANSI mode."""

from __future__ import annotations

from sqlglot.dialects.spark import Spark
from sqlglot.generators.spark import SparkGenerator

from traitsync.compute.batch import nodes
from traitsync.compute.batch.dialects._common import path_keys, sql_string


def _path(keys: list[str]) -> str:
    return "$" + "".join("['" + k.replace("\\", "\\\\").replace("'", "\\'") + "']" for k in keys)


class BatchSpark(Spark):
    class Generator(SparkGenerator):
        TRANSFORMS = {
            **SparkGenerator.TRANSFORMS,
            nodes.JsonRaw: lambda self, e: (f"NULLIF(TO_JSON(TRY_VARIANT_GET(TRY_PARSE_JSON({self.sql(e, 'this')}), "
                                            f"{sql_string(_path(path_keys(e)))}, 'variant')), 'null')"),
            nodes.JsonDoc: lambda self, e: f"TRY_PARSE_JSON({self.sql(e, 'this')})",
            nodes.JsonPick: lambda self, e: (f"NULLIF(TO_JSON(TRY_VARIANT_GET({self.sql(e, 'this')}, "
                                             f"{sql_string(_path([str(k.this) for k in e.expressions]))}, 'variant')),"
                                             " 'null')"),
            nodes.JsonUnquote: lambda self, e: (f"TRY_VARIANT_GET(TRY_PARSE_JSON({self.sql(e, 'this')}), '$', "
                                                "'string')"),
            nodes.SafeDouble: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS DOUBLE)",
            # TRY_CAST rounds '2.5' to 3: a fraction or an exponent is not an integer literal.
            nodes.SafeBigint: lambda self, e: (f"CASE WHEN {self.sql(e, 'this')} LIKE '%.%' OR {self.sql(e, 'this')} "
                                               f"LIKE '%e%' OR {self.sql(e, 'this')} LIKE '%E%' THEN NULL ELSE "
                                               f"TRY_CAST({self.sql(e, 'this')} AS BIGINT) END"),
            nodes.BinaryText: lambda self, e: self.sql(e, "this"),
            nodes.OrderedConcat: lambda self, e: (
                f"ARRAY_JOIN(TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT({self.sql(e, 'order')} AS k, "
                f"{self.sql(e, 'this')} AS v))), x -> x.v), {self.sql(e, 'separator')})"),
            nodes.IsoMs: lambda self, e: (f"CASE WHEN {self.sql(e, 'this')} RLIKE {sql_string(nodes.ISO_PATTERN)} "
                                          f"THEN UNIX_MILLIS(TRY_TO_TIMESTAMP({self.sql(e, 'this')})) END"),
        }


DIALECT = BatchSpark
NAME = "spark"
#: Spark inlines a CTE at every reference (and cannot be told not to), which re-plans each
#: dependency chain per reader: minutes of analysis for a hundred definitions. Each CTE is
#: therefore run as its own ``CACHE TABLE name AS ...`` statement, computed once.
CTES_AS_STATEMENTS = True
