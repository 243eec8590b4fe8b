"""Property test: the realtime engine equals the reference evaluator at every checked moment.

Random definitions are drawn from the IR grammar (every trait kind, counted conditions with
`within` / `between` windows, trait and membership conditions, funnels, and/or/not), and random
streams over a few users (late timestamps, trait updates, merges through a shared anonymous id).
The engine is fed one event at a time, in batches, or with crashes (a transaction that fails
before commit and an engine object thrown away); the clock is fake and only moves forward.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compute.realtime.conftest import Harness, S
from traitsync.definitions import Definitions, ir
from traitsync.identity import IdentityWorker, default_identity_config

EVENTS = ("A", "B")
WINDOWS = st.one_of(st.none(), st.builds(ir.Within, st.sampled_from([3, 5, 10, 30])),
                    st.builds(ir.Between, st.sampled_from([2, 5]), st.sampled_from([8, 20])))
FILTER = st.one_of(
    st.none(),
    st.builds(ir.PropertyCondition, st.just("v"), st.sampled_from(["greater_than", "less_than_or_equal", "equals"]),
              st.sampled_from([1, 2, 3])),
    st.builds(ir.PropertyCondition, st.just("s"), st.sampled_from(["equals", "exists", "starts_with"]),
              st.sampled_from(["x", "y"])).map(
        lambda c: c if c.op != "exists" else ir.PropertyCondition("s", "exists")),
)


@st.composite
def traits(draw: Any, i: int) -> ir.ComputedTrait:
    kind = draw(st.sampled_from(["event_counter", "aggregation", "most_frequent", "first", "last", "unique_list",
                                 "unique_list_count"]))
    prop = None if kind == "event_counter" else draw(st.sampled_from(["v", "s"]))
    function = draw(st.sampled_from(["sum", "avg", "min", "max"])) if kind == "aggregation" else None
    value_type = "string" if function in ("min", "max") and prop == "s" else "number"
    return ir.ComputedTrait(f"t{i}", kind, draw(st.sampled_from(EVENTS)), prop, function, draw(FILTER),  # type: ignore[arg-type]
                            draw(WINDOWS), draw(st.sampled_from([1, 2])), value_type)  # type: ignore[arg-type]


@st.composite
def conditions(draw: Any, trait_keys: list[str], audience_keys: list[str], depth: int = 0) -> ir.Condition:
    choices = ["performed", "performed", "funnel", "trait", "custom"]
    if audience_keys:
        choices.append("in")
    if depth < 2:
        choices += ["all", "any", "not"]
    kind = draw(st.sampled_from(choices))
    if kind == "performed":
        return ir.Performed(draw(st.sampled_from(EVENTS)), draw(FILTER), draw(st.sampled_from(["at_least", "at_most",
                            "exactly"])), draw(st.integers(0, 2)), draw(WINDOWS))
    if kind == "funnel":
        step = ir.Performed(draw(st.sampled_from(EVENTS)), None, draw(st.sampled_from(["at_least", "exactly"])),
                            draw(st.integers(0, 1)), ir.ParentWithin(draw(st.sampled_from([2, 5]))))
        return ir.Performed(draw(st.sampled_from(EVENTS)), step, "at_least", 1, draw(WINDOWS))
    if kind == "trait" and trait_keys:
        return ir.TraitCondition(draw(st.sampled_from(trait_keys)), draw(st.sampled_from(
            ["greater_than", "exists", "equals", "not_exists"])), draw(st.sampled_from([0, 1, 2, "x"])))
    if kind in ("trait", "custom"):
        return ir.TraitCondition("plan", draw(st.sampled_from(["equals", "not_equals", "exists"])),
                                 draw(st.sampled_from(["gold", "free"])))
    if kind == "in":
        return ir.InAudience(draw(st.sampled_from(audience_keys)))
    if kind == "not":
        return ir.Not(draw(conditions(trait_keys, audience_keys, depth + 1)))
    parts = tuple(draw(st.lists(conditions(trait_keys, audience_keys, depth + 1), min_size=1, max_size=3)))
    return ir.All(parts) if kind == "all" else ir.Any(parts)


@st.composite
def definition_sets(draw: Any) -> Definitions:
    ts = [draw(traits(i)) for i in range(draw(st.integers(1, 3)))]
    auds: list[ir.Audience] = []
    for i in range(draw(st.integers(1, 3))):
        cond = draw(conditions([t.key for t in ts], [a.key for a in auds]))
        anon = draw(st.booleans())
        auds.append(ir.Audience(f"a{i}", cond, options=ir.Options(include_anonymous=anon)))
    return Definitions([*ts, *auds])


PROPS = st.fixed_dictionaries({}, optional={"v": st.sampled_from([1, 2, 3, 2.5, -1]),
                                            "s": st.sampled_from(["x", "y", "xy", "5"])})
OPS = st.lists(st.one_of(
    st.tuples(st.just("track"), st.sampled_from(["u1", "u2", "a1", "a2"]), st.sampled_from(EVENTS),
              st.integers(-15, 3), PROPS),
    st.tuples(st.just("plan"), st.sampled_from(["u1", "u2"]), st.sampled_from(["gold", "free", None])),
    st.tuples(st.just("link"), st.sampled_from(["u1", "u2"]), st.sampled_from(["a1", "a2"])),
    st.tuples(st.just("tick"), st.integers(1, 12)),
), min_size=1, max_size=25)


def _who(name: str) -> dict[str, Any]:
    return {"userId": name} if name.startswith("u") else {"anonymousId": name}


def _run(tmp_path: Any, definitions: Definitions, ops: list[Any], mode: str, crash_at: int) -> None:
    url = f"sqlite:///{tmp_path}/p{uuid.uuid4().hex}.db"
    h = Harness(url, definitions)
    try:
        h.engine.prepare()
        for step, op in enumerate(ops, start=1):
            if op[0] == "track":
                h.send({"type": "track", **_who(op[1]), "event": op[2], "t": h.clock.ms + op[3] * S,
                        "properties": op[4]})
            elif op[0] == "plan":
                h.send({"type": "identify", "userId": op[1], "traits": {"plan": op[2]}})
            elif op[0] == "link":
                h.send({"type": "identify", "userId": op[1], "anonymousId": op[2], "traits": {}})
            else:
                h.tick(op[1] * S)
            if mode == "crash" and step == crash_at:
                def boom() -> None:
                    raise RuntimeError("simulated crash before commit")
                h.engine.before_commit = boom
                try:
                    h.sync()
                except RuntimeError:
                    pass
                h.new_engine()
            if mode == "single" or (mode == "batch" and step % 3 == 0) or op[0] == "tick":
                h.sync(batch=1 if mode == "single" else 2)
                h.engine.fire_due(h.clock.ms)
                if op[0] == "tick":
                    h.check()
        h.sync()
        h.engine.fire_due(h.clock.ms)
        h.check()
        for _ in range(3):  # and later, with no new event: exits happen on time
            h.tick(7 * S)
            h.check()
    finally:
        h.close()


@settings(max_examples=int(os.environ.get("ENGINE_EXAMPLES", "120")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(definitions=definition_sets(), ops=OPS, mode=st.sampled_from(["single", "batch", "crash"]),
       crash_at=st.integers(1, 10))
def test_engine_equals_reference(tmp_path: Any, definitions: Definitions, ops: list[Any], mode: str,
                                 crash_at: int) -> None:
    _run(tmp_path, definitions, ops, mode, crash_at)


# --- accounts -----------------------------------------------------------------------------------
# Random account structures: users grouped into several accounts (and, with ``latest`` membership,
# moved between them), merges of users, late events, account traits; random account-level traits
# and audiences mixing conditions on the union of the members' events, account traits, other
# account-level keys and ANY / ALL / NONE clauses over user-level conditions.

ACCOUNT_LEVEL = ir.Options(level="account")


@st.composite
def account_conditions(draw: Any, user_traits: list[str], user_audiences: list[str], acc_traits: list[str],
                       acc_audiences: list[str], depth: int = 0) -> ir.Condition:
    choices = ["performed", "quantified", "quantified", "tier"]
    if acc_traits:
        choices.append("trait")
    if acc_audiences:
        choices.append("in")
    if depth < 2:
        choices += ["all", "any", "not"]
    kind = draw(st.sampled_from(choices))
    if kind == "performed":
        return ir.Performed(draw(st.sampled_from(EVENTS)), draw(FILTER), draw(st.sampled_from(["at_least", "at_most",
                            "exactly"])), draw(st.integers(0, 2)), draw(WINDOWS))
    if kind == "quantified":
        simple = [ir.Performed(draw(st.sampled_from(EVENTS))), ir.TraitCondition("plan", "equals", "gold")]
        simple += [ir.InAudience(k) for k in user_audiences]
        # Mostly a simple condition, so that members differ and ALL differs from ANY.
        inner = draw(st.one_of(st.sampled_from(simple), conditions(user_traits, user_audiences, 1)))
        quantifier = draw(st.sampled_from(["any", "all", "none"]))
        if quantifier == "none":
            return ir.Quantified("all", ir.Not(inner))
        return ir.Quantified(quantifier, inner)  # type: ignore[arg-type]
    if kind == "tier":
        return ir.TraitCondition("tier", draw(st.sampled_from(["equals", "exists"])), "pro")
    if kind == "trait":
        return ir.TraitCondition(draw(st.sampled_from(acc_traits)), draw(st.sampled_from(
            ["greater_than", "exists", "equals", "not_exists"])), draw(st.sampled_from([0, 1, 2, "x"])))
    if kind == "in":
        return ir.InAudience(draw(st.sampled_from(acc_audiences)))
    if kind == "not":
        return ir.Not(draw(account_conditions(user_traits, user_audiences, acc_traits, acc_audiences, depth + 1)))
    parts = tuple(draw(st.lists(account_conditions(user_traits, user_audiences, acc_traits, acc_audiences,
                                                   depth + 1), min_size=1, max_size=3)))
    return ir.All(parts) if kind == "all" else ir.Any(parts)


@st.composite
def account_definition_sets(draw: Any) -> Definitions:
    users = draw(definition_sets())
    uts = [k for k in users.order if isinstance(users[k], ir.ComputedTrait)]
    uas = [k for k in users.order if isinstance(users[k], ir.Audience)]
    ats = [replace(draw(traits(i)), key=f"at{i}", options=ACCOUNT_LEVEL) for i in range(draw(st.integers(0, 2)))]
    aas: list[ir.Audience] = []
    for i in range(draw(st.integers(1, 3))):
        cond = draw(account_conditions(uts, uas, [t.key for t in ats], [a.key for a in aas]))
        aas.append(ir.Audience(f"aa{i}", cond, options=ACCOUNT_LEVEL))
    return Definitions([*users.values(), *ats, *aas])


USERS = ("u1", "u2", "u3", "a1")
ACCOUNT_OPS = st.lists(st.one_of(
    st.tuples(st.just("track"), st.sampled_from(USERS), st.sampled_from(EVENTS), st.integers(-15, 3), PROPS),
    st.tuples(st.just("group"), st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["g1", "g2", "g3"]),
              st.sampled_from([None, "pro", "free"])),
    st.tuples(st.just("plan"), st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["gold", "free", None])),
    st.tuples(st.just("link"), st.sampled_from(["u1", "u2", "u3"]), st.just("a1")),
    st.tuples(st.just("tick"), st.integers(1, 12)),
), min_size=1, max_size=25)


def _run_accounts(tmp_path: Any, definitions: Definitions, ops: list[Any], mode: str, membership: str,
                  crash_at: int = 0) -> None:
    url = f"sqlite:///{tmp_path}/a{uuid.uuid4().hex}.db"
    h = Harness(url, definitions)
    try:
        if membership == "latest":
            h.identity.close()
            h.identity = IdentityWorker(h.db, replace(default_identity_config(), account_membership="latest"))
        h.engine.prepare()
        for step, op in enumerate(ops, start=1):
            if op[0] == "track":
                h.send({"type": "track", **_who(op[1]), "event": op[2], "t": h.clock.ms + op[3] * S,
                        "properties": op[4]})
            elif op[0] == "group":
                h.send({"type": "group", "userId": op[1], "groupId": op[2],
                        "traits": {} if op[3] is None else {"tier": op[3]}})
            elif op[0] == "plan":
                h.send({"type": "identify", "userId": op[1], "traits": {"plan": op[2]}})
            elif op[0] == "link":
                h.send({"type": "identify", "userId": op[1], "anonymousId": op[2], "traits": {}})
            else:
                h.tick(op[1] * S)
            if mode == "crash" and step == crash_at:
                def boom() -> None:
                    raise RuntimeError("simulated crash before commit")
                h.engine.before_commit = boom
                try:
                    h.sync()
                except RuntimeError:
                    pass
                h.engine.before_commit = None  # the same engine object goes on after a failed transaction
            if mode == "single" or (mode == "batch" and step % 3 == 0) or op[0] == "tick":
                h.sync(batch=1 if mode == "single" else 2)
                h.engine.fire_due(h.clock.ms)
                if op[0] == "tick" or mode == "single":
                    h.check()
        h.sync()
        h.engine.fire_due(h.clock.ms)
        h.check()
        for _ in range(3):  # and later, with no new event: exits happen on time
            h.tick(7 * S)
            h.check()
        h.new_engine()  # a restarted engine (state from the store) goes on from there
        h.track("u1", "A", v=1)
        h.sync()
        h.check()
    finally:
        h.close()


@settings(max_examples=int(os.environ.get("ENGINE_EXAMPLES", "120")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(definitions=account_definition_sets(), ops=ACCOUNT_OPS, mode=st.sampled_from(["single", "batch", "crash"]),
       membership=st.sampled_from(["many", "latest"]), crash_at=st.integers(1, 10))
def test_engine_equals_reference_on_accounts(tmp_path: Any, definitions: Definitions, ops: list[Any], mode: str,
                                             membership: str, crash_at: int) -> None:
    _run_accounts(tmp_path, definitions, ops, mode, membership, crash_at)
