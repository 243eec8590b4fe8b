"""Traits that pick one value or list distinct values, as rankings over their qualifying rows.

Ties follow the reference evaluator: first/last by (time, log offset); min/max keep the first
value in time among equal ones; most frequent breaks count ties by the text's code-point order;
a unique list keeps each text's first value, ordered by that text.
"""

from __future__ import annotations

from sqlglot import exp

from traitsync.compute.batch import nodes
from traitsync.compute.batch.typed import TRUE, VALUE_COLUMNS, and_, double_null, lit, text_null
from traitsync.definitions import ir


def _select(*cols: exp.Expr) -> exp.Select:
    return exp.Select(expressions=list(cols))


def _alias(e: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(e, name)


def rank(t: ir.ComputedTrait, rows: str) -> exp.Expr:
    """The one value per profile of a trait that picks a value (first, last, min, max, most
    frequent) or lists the distinct ones, from ``rows`` (pid, ts, ofs, k, j, n, s, tx): a
    ``ROW_NUMBER`` ranking, which every engine has, instead of engine-specific arg_min/arg_max."""
    q = exp.column
    tx = nodes.BinaryText(this=q("tx"))
    if t.kind in ("first", "last", "aggregation"):
        where: exp.Expr = TRUE
        if t.kind == "first":
            order = [exp.Ordered(this=q("ts")), exp.Ordered(this=q("ofs"))]
        elif t.kind == "last":
            order = [exp.Ordered(this=q("ts"), desc=True), exp.Ordered(this=q("ofs"), desc=True)]
        else:
            desc = t.function == "max"
            by: exp.Expr
            if t.value_type == "string":
                where, by = exp.EQ(this=q("k"), expression=lit("s")), nodes.BinaryText(this=q("s"))
            else:
                where, by = exp.EQ(this=q("k"), expression=lit("n")), q("n")
            order = [exp.Ordered(this=by, desc=desc), exp.Ordered(this=q("ts")), exp.Ordered(this=q("ofs"))]
        rn = exp.Window(this=exp.RowNumber(), partition_by=[q("pid")], order=exp.Order(expressions=order))
        ranked = _select(q("pid"), *(q(c) for c in VALUE_COLUMNS), _alias(rn, "rn")).from_(rows).where(where)
        return _select(q("pid"), *(q(c) for c in VALUE_COLUMNS)).from_(ranked.subquery("z")).where(
            exp.EQ(this=q("rn"), expression=lit(1)))
    if t.kind == "unique_list":
        rn = exp.Window(this=exp.RowNumber(), partition_by=[q("pid"), q("tx")],
                        order=exp.Order(expressions=[exp.Ordered(this=q("ts")), exp.Ordered(this=q("ofs"))]))
        firsts = _select(q("pid"), q("j"), q("tx"), _alias(rn, "rn")).from_(rows)
        listed = exp.DPipe(this=exp.DPipe(this=lit("["), expression=nodes.OrderedConcat(
            this=q("j"), order=tx, separator=lit(","))), expression=lit("]"))
        return _select(q("pid"), _alias(lit("a"), "k"), _alias(listed, "j"), _alias(double_null(), "n"),
                       _alias(text_null(), "s")).from_(firsts.subquery("z")).where(
            exp.EQ(this=q("rn"), expression=lit(1))).group_by(q("pid"))
    # most_frequent: the text with the most occurrences, ties to the alphabetically first
    counts = _select(q("pid"), q("tx"), _alias(exp.Count(this=exp.Star()), "cnt")).from_(rows).group_by(
        q("pid"), q("tx"))
    rn = exp.Window(this=exp.RowNumber(), partition_by=[q("pid")], order=exp.Order(expressions=[
        exp.Ordered(this=q("cnt"), desc=True), exp.Ordered(this=tx)]))
    ranked = _select(q("pid"), q("tx"), q("cnt"), _alias(rn, "rn")).from_(counts.subquery("z"))
    return _select(q("pid"), _alias(lit("s"), "k"), _alias(text_null(), "j"), _alias(double_null(), "n"),
                   _alias(q("tx"), "s")).from_(ranked.subquery("y")).where(
        and_(exp.EQ(this=q("rn"), expression=lit(1)), exp.GTE(this=q("cnt"), expression=lit(t.min_frequency))))
