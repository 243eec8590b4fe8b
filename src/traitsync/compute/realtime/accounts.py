"""Account-level definitions in the realtime engine: how they are split into what it already does.

An account-level definition is evaluated on the account profile (the reference evaluator's
meaning): its events are the union of its linked users' events, its traits are the account's
own, and ``ANY`` / ``ALL`` clauses are evaluated per linked user. The engine gets there with
two pieces it already has:

* each quantified clause's inner condition becomes a hidden **member audience**, a user-level
  audience (key ``__member_<hash>``) that the engine keeps current for every user like any
  other, with its windows and due times; it is never written to the results or values tables
  and every user is eligible for it (the reference does not apply eligibility to members);
* the account keeps, per member audience, the set of its members currently in it, updated when
  a member's value flips and when a link is added or removed; the clause then reads "some
  member" (``any``) or "every member, and at least one" (``all``) from that set.

Everything outside a quantifier (event conditions over the union of events, account traits,
other account-level keys) is evaluated over the account's own records exactly as for a user.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import orjson

from traitsync.definitions import Definitions, ir
from traitsync.definitions.serialize import condition_to_dict

#: Prefix of the hidden member audiences (never a valid user key: keys start with a letter).
MEMBER_PREFIX = "__member_"


def member_key(node: ir.Quantified) -> str:
    """The hidden member audience of a quantified clause (the same inner condition shares one)."""
    text = orjson.dumps(condition_to_dict(node.condition), option=orjson.OPT_SORT_KEYS)
    return MEMBER_PREFIX + hashlib.sha256(text).hexdigest()[:16]


def clause_key(node: ir.Quantified) -> str:
    """The trait entry holding an account's answer to one ``ANY`` / ``ALL`` clause."""
    return f"{member_key(node)}:{node.quantifier}"


def strip_quantifiers(defn: ir.Definition) -> ir.Definition:
    """``defn`` with each quantified clause replaced by a membership of its answer (``clause_key``).

    What the engine compiles for the account itself: events, traits, windows and due times are
    then the account's own, and the clauses read the answers the engine supplies.
    """
    def swap(cond: ir.Condition) -> ir.Condition:
        if isinstance(cond, ir.Quantified):
            return ir.InAudience(clause_key(cond))
        if isinstance(cond, ir.All):
            return ir.All(tuple(swap(c) for c in cond.conditions))
        if isinstance(cond, ir.Any):
            return ir.Any(tuple(swap(c) for c in cond.conditions))
        if isinstance(cond, ir.Not):
            return ir.Not(swap(cond.condition))
        return cond

    if isinstance(defn, ir.Audience):
        return replace(defn, condition=swap(defn.condition))
    return defn if defn.where is None else replace(defn, where=swap(defn.where))


def is_account(defn: ir.Definition) -> bool:
    return defn.options.level == "account"


def _root(defn: ir.Definition) -> ir.Condition | None:
    return defn.condition if isinstance(defn, ir.Audience) else defn.where


def quantified(defn: ir.Definition) -> list[ir.Quantified]:
    """The quantified clauses of a definition, outermost first (validation refuses nesting)."""
    return [c for c in ir.iter_conditions(_root(defn)) if isinstance(c, ir.Quantified)]


def member_audiences(definitions: Definitions) -> list[ir.Audience]:
    """Every hidden member audience the account-level definitions need, once each."""
    found: dict[str, ir.Audience] = {}
    for key in definitions.order:
        defn = definitions[key]
        if not is_account(defn):
            continue
        for node in quantified(defn):
            mk = member_key(node)
            if mk not in found:
                found[mk] = ir.Audience(mk, node.condition, options=ir.Options(include_anonymous=True))
    return list(found.values())


def outer_dependencies(defn: ir.Definition, known: set[str] | None = None) -> frozenset[str]:
    """The keys an account-level definition reads on the account itself (not inside a quantifier):
    those among ``known`` (defined computations), or every key (custom traits too) without it."""
    keys: set[str] = set()

    def walk(cond: ir.Condition | None) -> None:
        if cond is None or isinstance(cond, ir.Quantified):
            return
        if isinstance(cond, ir.All | ir.Any):
            for c in cond.conditions:
                walk(c)
        elif isinstance(cond, ir.Not):
            walk(cond.condition)
        elif isinstance(cond, ir.Performed):
            walk(cond.where)
        else:
            keys.update(k for k in cond.depends_on() if known is None or k in known)

    walk(_root(defn))
    return frozenset(keys)
