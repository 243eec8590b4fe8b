"""Property test: account-level definitions on the batch engines equal the reference evaluator.

Random account structures come from real ``group`` calls through ingest and identity: users (with
and without a user id) in several accounts, account traits, merges that carry a user's links to
the survivor. Random definitions mix user-level traits and audiences (the user-level property
test's generators) with account-level ones: account computed traits of every kind (aggregates over
the union of the account's users' events), account audiences reading account traits, account
events, other account audiences and ``ANY`` / ``ALL`` / none of the users satisfying a user-level
condition (which may read user-level traits and audiences). Every account's and every user's
every value must equal the reference evaluator's at random moments, past and future, with random
creation times (the history rule), on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compute.batch.accounts_harness import AccountStore, S
from tests.compute.batch.test_engines_vs_reference import reset_schema
from tests.compute.realtime.test_engine_vs_reference import EVENTS, PROPS, _who, conditions, traits
from traitsync.compute.batch import compile_definitions
from traitsync.compute.batch.compiler import unsupported
from traitsync.compute.batch.runners import run_duckdb, run_postgres
from traitsync.definitions import Definitions, ir

ACCOUNT = ir.Options(level="account")
USERS = ("u1", "u2", "u3", "a1", "a2")
GROUPS = ("g1", "g2", "g3")


@st.composite
def account_conditions(draw: Any, user_traits: list[str], user_audiences: list[str], account_traits: list[str],
                       account_audiences: list[str], depth: int = 0) -> ir.Condition:
    """An account audience's condition: account-level clauses (the user-level grammar, read on the
    account's events and traits), quantified user-level clauses, and and/or/not of both."""
    kind = draw(st.sampled_from(["account", "quantified", "quantified", "none"] +
                                (["all", "any", "not"] if depth < 1 else [])))
    if kind == "account":
        return draw(conditions(account_traits, account_audiences, 1))
    if kind in ("quantified", "none"):
        body = draw(conditions(user_traits, user_audiences, 1))
        if kind == "none":
            return ir.Quantified("all", ir.Not(body))
        return ir.Quantified(draw(st.sampled_from(["any", "all"])), body)
    if kind == "not":
        return ir.Not(draw(account_conditions(user_traits, user_audiences, account_traits, account_audiences,
                                              depth + 1)))
    parts = tuple(draw(st.lists(account_conditions(user_traits, user_audiences, account_traits, account_audiences,
                                                   depth + 1), min_size=1, max_size=3)))
    return ir.All(parts) if kind == "all" else ir.Any(parts)


@st.composite
def account_definition_sets(draw: Any) -> Definitions:
    user_traits = [draw(traits(i)) for i in range(draw(st.integers(0, 2)))]
    user_auds: list[ir.Audience] = []
    for i in range(draw(st.integers(0, 2))):
        cond = draw(conditions([t.key for t in user_traits], [a.key for a in user_auds]))
        user_auds.append(ir.Audience(f"a{i}", cond, options=ir.Options(include_anonymous=draw(st.booleans()))))
    acc_traits = [dataclasses.replace(draw(traits(i)), key=f"at{i}", options=ACCOUNT)
                  for i in range(draw(st.integers(0, 2)))]
    acc_auds: list[ir.Audience] = []
    for i in range(draw(st.integers(1, 3))):
        cond = draw(account_conditions([t.key for t in user_traits], [a.key for a in user_auds],
                                       [t.key for t in acc_traits], [a.key for a in acc_auds]))
        acc_auds.append(ir.Audience(f"aa{i}", cond, options=ACCOUNT))
    return Definitions([*user_traits, *user_auds, *acc_traits, *acc_auds])


TRACK = st.tuples(st.just("track"), st.sampled_from(USERS), st.sampled_from(EVENTS), st.integers(-15, 3), PROPS)
GROUP = st.tuples(st.just("group"), st.sampled_from(USERS), st.sampled_from(GROUPS),
                  st.sampled_from(["gold", "free", None]))
OPS = st.lists(st.one_of(
    TRACK, TRACK, GROUP, GROUP,
    st.tuples(st.just("plan"), st.sampled_from(["u1", "u2"]), st.sampled_from(["gold", "free", None])),
    st.tuples(st.just("link"), st.sampled_from(["u1", "u2"]), st.sampled_from(["a1", "a2"])),
    st.tuples(st.just("tick"), st.integers(1, 12)),
), min_size=1, max_size=30)
MOMENTS = st.lists(st.integers(-40, 40), min_size=1, max_size=3)
CREATED = st.lists(st.one_of(st.none(), st.integers(-30, 5)), min_size=12, max_size=12)


def feed(store: AccountStore, ops: list[Any]) -> None:
    for op in ops:
        if op[0] == "track":
            store.send({"type": "track", **_who(op[1]), "event": op[2], "t": store.ms + op[3] * S,
                        "properties": op[4]})
        elif op[0] == "group":
            group_traits = {"name": op[2].upper()} if op[3] is None else {"name": op[2].upper(), "plan": op[3]}
            store.send({"type": "group", **_who(op[1]), "groupId": op[2], "traits": group_traits})
        elif op[0] == "plan":
            store.send({"type": "identify", "userId": op[1], "traits": {"plan": op[2]}})
        elif op[0] == "link":
            store.send({"type": "identify", "userId": op[1], "anonymousId": op[2], "traits": {}})
        else:
            store.ms += op[1] * S
    store.sync()


def check(store: AccountStore, engines: list[str], moments: list[int], created_offsets: list[int | None]) -> None:
    keys = list(store.definitions.order)
    created = {k: store.ms + c * S for k, c in zip(keys, created_offsets, strict=False) if c is not None}
    for offset in moments:
        as_of = store.ms + offset * S
        query = compile_definitions(store.definitions, as_of, created_at=created)
        expected = store.expected(as_of, created)
        for engine in engines:
            rows = run_duckdb(store.db, query) if engine == "duckdb" else run_postgres(store.db, query)
            got = store.table(rows)
            assert got.keys() == expected.keys()
            for pid in expected:
                assert got[pid] == expected[pid], (engine, offset, pid)
                for key in expected[pid]:  # the same JSON: 5 is not 5.0 on the wire
                    assert orjson.dumps(got[pid][key]) == orjson.dumps(expected[pid][key]), (engine, pid, key)


def _settings(env: str, default: int) -> settings:
    return settings(max_examples=int(os.environ.get(env, str(default))), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.timeout(1800)  # a loaded 2-core machine: 40 examples of ingest, identity and DuckDB
@_settings("BATCH_ACCOUNT_EXAMPLES", 40)
@given(definitions=account_definition_sets(), ops=OPS, moments=MOMENTS, created=CREATED)
def test_duckdb_equals_reference_for_accounts(tmp_path: Any, definitions: Definitions, ops: list[Any],
                                              moments: list[int], created: list[int | None]) -> None:
    store = AccountStore(f"sqlite:///{tmp_path}/acc{uuid.uuid4().hex}.db", definitions)
    try:
        feed(store, ops)
        check(store, ["duckdb"], moments, created)
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.timeout(1800)
@_settings("BATCH_ACCOUNT_PG_EXAMPLES", 10)
@given(definitions=account_definition_sets(), ops=OPS, moments=MOMENTS, created=CREATED)
def test_postgres_and_duckdb_equal_reference_for_accounts(pg_url: str, definitions: Definitions, ops: list[Any],
                                                          moments: list[int], created: list[int | None]) -> None:
    reset_schema(pg_url)
    store = AccountStore(pg_url, definitions)
    try:
        feed(store, ops)
        check(store, ["postgres", "duckdb"], moments, created)
    finally:
        store.close()


def test_a_quantifier_inside_a_quantifier_is_refused_with_its_reason() -> None:
    inner = ir.Quantified("any", ir.Performed("A"))
    nested = ir.Audience("nested", ir.Quantified("all", inner), options=ACCOUNT)
    reader = ir.Audience("reader", ir.All((ir.InAudience("nested"), ir.Performed("B"))), options=ACCOUNT)
    ok = ir.Audience("ok", ir.Quantified("all", ir.Not(ir.Performed("A"))), options=ACCOUNT)
    definitions = Definitions([nested, reader, ok])
    why = "ANY / ALL only apply to an account's users (level: account, not nested)"
    assert unsupported(definitions, "nested") == why
    assert unsupported(definitions, "reader") == why
    assert unsupported(definitions, "ok") is None
