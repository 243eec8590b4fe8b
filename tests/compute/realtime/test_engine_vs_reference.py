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
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compute.realtime.conftest import Harness, S
from traitsync.definitions import Definitions, ir

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
