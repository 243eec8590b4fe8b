"""The YAML form of ``journeys:`` -> :class:`Journey` plus one compiled audience per step.

A journey is a DAG. Each step names its parents with ``after:`` (default: the entry; a list
joins branches into one step), may ``wait:`` (the user joined a parent at least that long
ago), and is one of: a condition step (``condition:`` or ``query:``), a send step (neither:
it only forwards users to the destinations connected to it), or a split whose branches are
steps. Splits have no audience of their own, as in Segment: the branches do.

Each step compiles to an audience whose condition is "member of a parent step" AND the step's
own condition (the negation for a false branch); the wait, stickiness, exclusivity of
true/false branches, random buckets and exit / re-entry are in its :class:`ir.StepRule`, which
the realtime engine applies. Loops are refused with the file, line and ``after`` key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any as AnyType

from traitsync.config.yaml_lines import KeyPath, LocatedDocument
from traitsync.definitions import ir
from traitsync.definitions.journey_model import ENTRY, Journey, JourneyNode, StepKind, step_computation_key
from traitsync.definitions.query_language import QueryError, parse_audience_query
from traitsync.definitions.validate import check_key
from traitsync.definitions.yaml_form import _Reader

JOURNEY_KEYS = ("key", "name", "description", "entry", "historical", "lookback", "include_anonymous", "exit",
                "steps")
EXIT_KEYS = ("after", "reenter_after")
STEP_KEYS = ("key", "name", "description", "after", "wait", "condition", "query", "split", "send")
SPLIT_KEYS = ("condition", "query", "if_true", "if_false", "branches", "random")
BRANCH_KEYS = ("key", "name", "condition", "query")
RANDOM_KEYS = ("key", "name", "weight")
MAX_RANDOM_BRANCHES = 5
_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class _JourneyReader(_Reader):
    """Reads one journey; conditions use the audience grammar of :mod:`yaml_form`."""

    def span(self, value: object, path: KeyPath) -> int:
        """A wait, exit or re-entry time: a whole number with s, m, h, d or w (weeks)."""
        match = _DURATION.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise self.fail(path, f"bad duration {value!r}: use a whole number followed by s, m, h, d or w "
                                  "(for example 5s, 30d or 2w)")
        return int(match.group(1)) * _UNITS[match.group(2)]

    def audience_condition(self, item: Mapping[str, AnyType], path: KeyPath) -> ir.Condition | None:
        """``condition:`` or ``query:`` of a step or branch (None when it has neither)."""
        if "condition" in item and "query" in item:
            raise self.fail((*path, "query"), "give either condition or query, not both")
        if "query" in item:
            text = self.string(item["query"], (*path, "query"), "query")
            try:
                return parse_audience_query(text)
            except QueryError as exc:
                raise self.fail((*path, "query"), f"query: {exc.message}") from None
        if "condition" in item:
            return self.condition(item["condition"], (*path, "condition"))
        return None

    def entry(self, value: object, path: KeyPath) -> ir.Condition:
        if isinstance(value, dict) and set(value) == {"query"}:
            cond = self.audience_condition(value, path)
            assert cond is not None
            return cond
        return self.condition(value, path)

    def step_key(self, value: object, path: KeyPath) -> str:
        key = self.string(value, path, "key")
        check_key(self.doc, key, path)
        if key == ENTRY:
            raise self.fail(path, f"{ENTRY!r} is the journey's entry step; give this step another key")
        return key

    def parents(self, item: Mapping[str, AnyType], path: KeyPath) -> tuple[str, ...]:
        if "after" not in item:
            return (ENTRY,)
        raw = item["after"]
        values = raw if isinstance(raw, list) else [raw]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise self.fail((*path, "after"), "after must be a step key, or a list of step keys to join branches")
        if len(set(values)) != len(values):
            raise self.fail((*path, "after"), "after names the same step twice")
        return tuple(values)

    def sends(self, item: Mapping[str, AnyType], path: KeyPath) -> tuple[tuple[str, KeyPath], ...]:
        if "send" not in item:
            return ()
        raw = item["send"]
        if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
            raise self.fail((*path, "send"), "send must be a list of destination ids")
        return tuple((v, (*path, "send", i)) for i, v in enumerate(raw))


class _Builder:
    """Collects the nodes of one journey and compiles them once the DAG is checked."""

    def __init__(self, r: _JourneyReader, key: str, path: KeyPath) -> None:
        self.r = r
        self.key = key
        self.path = path
        self.nodes: list[JourneyNode] = []
        self.conditions: dict[str, ir.Condition | None] = {}
        self.siblings: dict[str, str] = {}
        self.buckets: dict[str, tuple[int, int]] = {}
        self.splits: dict[str, tuple[str, ...]] = {}
        self.seen: dict[str, KeyPath] = {}

    def add(self, node: JourneyNode, condition: ir.Condition | None) -> None:
        if node.key in self.seen or node.key in self.splits:
            raise self.r.fail((*node.path, "key"), f"duplicate step key {node.key!r} in journey {self.key!r}")
        self.seen[node.key] = node.path
        self.nodes.append(node)
        self.conditions[node.key] = condition

    def step(self, value: object, path: KeyPath) -> None:
        r = self.r
        item = r.mapping(value, path, STEP_KEYS, "a journey step")
        key = r.step_key(r.required(item, "key", path), (*path, "key"))
        parents = r.parents(item, path)
        wait = r.span(item["wait"], (*path, "wait")) if "wait" in item else 0
        name = r.name(item, path)
        if "split" not in item:
            cond = r.audience_condition(item, path)
            kind: StepKind = "send" if cond is None else "condition"
            self.add(JourneyNode(key, step_computation_key(self.key, key), kind, parents, path, name, wait,
                                 sends=r.sends(item, path)), cond)
            return
        for other in ("condition", "query", "send"):
            if other in item:
                raise r.fail((*path, other), f"{other} goes inside split (or on the steps after its branches)")
        if key in self.seen or key in self.splits:
            raise r.fail((*path, "key"), f"duplicate step key {key!r} in journey {self.key!r}")
        self.split(key, item["split"], (*path, "split"), parents, wait)

    def split(self, label: str, value: object, path: KeyPath, parents: tuple[str, ...], wait: int) -> None:
        r = self.r
        item = r.mapping(value, path, SPLIT_KEYS, "a split")
        forms = [f for f in ("if_true", "branches", "random") if f in item]
        if len(forms) != 1:
            raise r.fail(path, "a split is one of: condition (or query) with if_true and if_false (true/false), "
                               "branches (multi-branch) or random (randomised)")
        branch_keys: list[str] = []

        def node(key: str, kind: StepKind, at: KeyPath, name: str | None = None) -> JourneyNode:
            branch_keys.append(key)
            return JourneyNode(key, step_computation_key(self.key, key), kind, parents, at, name, wait, split=label)

        if forms == ["if_true"]:
            for needed in ("if_false",):
                if needed not in item:
                    raise r.fail(path, f"required key {needed!r} is missing")
            for extra in ("branches", "random"):
                if extra in item:
                    raise r.fail((*path, extra), "a true/false split takes no other branches")
            cond = r.audience_condition(item, path)
            if cond is None:
                raise r.fail(path, "a true/false split needs condition or query")
            yes = r.step_key(item["if_true"], (*path, "if_true"))
            no = r.step_key(item["if_false"], (*path, "if_false"))
            if yes == no:
                raise r.fail((*path, "if_false"), "if_true and if_false must be two different step keys")
            self.add(node(yes, "true", (*path, "if_true")), cond)
            self.add(node(no, "false", (*path, "if_false")), ir.Not(cond))
            self.siblings[yes], self.siblings[no] = no, yes
        else:
            for extra in ("condition", "query", "if_false"):
                if extra in item:
                    raise r.fail((*path, extra), f"{extra} belongs to a true/false split (with if_true)")
            form = forms[0]
            raw = item[form]
            here = (*path, form)
            if not isinstance(raw, list) or len(raw) < 2:
                raise r.fail(here, f"{form} must be a list of at least two branches")
            if form == "random" and len(raw) > MAX_RANDOM_BRANCHES:
                raise r.fail(here, f"a randomised split has at most {MAX_RANDOM_BRANCHES} branches")
            low = 0
            for i, entry in enumerate(raw):
                at = (*here, i)
                b = r.mapping(entry, at, BRANCH_KEYS if form == "branches" else RANDOM_KEYS, "a branch")
                key = r.step_key(r.required(b, "key", at), (*at, "key"))
                if form == "branches":
                    cond = r.audience_condition(b, at)
                    if cond is None:
                        raise r.fail(at, "a branch of a multi-branch split needs condition or query")
                    self.add(node(key, "branch", at, r.name(b, at)), cond)
                    continue
                weight = r.required(b, "weight", at)
                if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
                    raise r.fail((*at, "weight"), "weight must be a whole percentage from 1 to 100")
                self.add(node(key, "random", at, r.name(b, at)), None)
                self.buckets[key] = (low, low + weight)
                low += weight
            if form == "random" and low != 100:
                raise r.fail(here, f"the weights of a randomised split must add up to 100 (they add up to {low})")
        self.splits[label] = tuple(branch_keys)

    def check_dag(self) -> None:
        """Every ``after`` names a step (not a split) and no step is its own ancestor."""
        r = self.r
        by_key = {n.key: n for n in self.nodes}
        for n in self.nodes:
            for p in n.parents:
                if p in self.splits:
                    raise r.fail(self._after_path(n), f"{p!r} is a split; continue after one of its branches "
                                                      f"({', '.join(self.splits[p])})")
                if p not in by_key:
                    raise r.fail(self._after_path(n), f"unknown step {p!r} in journey {self.key!r}")
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(key: str) -> None:
            state[key] = 1
            stack.append(key)
            for p in by_key[key].parents:
                if state.get(p) == 1:
                    loop = [*stack[stack.index(p):], p]
                    raise r.fail(self._after_path(by_key[key]), "journeys cannot loop: "
                                 f"{' -> '.join(reversed(loop))}; a branch may only join a step that comes after it")
                if p not in state:
                    visit(p)
            stack.pop()
            state[key] = 2

        for n in self.nodes:
            if n.key not in state:
                visit(n.key)

    @staticmethod
    def _after_path(node: JourneyNode) -> KeyPath:
        return node.path if node.split is not None else (*node.path, "after")


def _gate(parents: tuple[str, ...]) -> ir.Condition:
    members: tuple[ir.Condition, ...] = tuple(ir.InAudience(p) for p in parents)
    return members[0] if len(members) == 1 else ir.Any(members)


def journey_from_yaml(doc: LocatedDocument, entry: object, path: KeyPath) -> tuple[Journey, list[ir.JourneyStep]]:
    """One ``journeys:`` entry -> the journey and its steps' audiences (entry first)."""
    r = _JourneyReader(doc)
    item = r.mapping(entry, path, JOURNEY_KEYS, "a journey")
    key = r.string(r.required(item, "key", path), (*path, "key"), "key")
    check_key(doc, key, (*path, "key"))
    name = r.name(item, path)
    options = r.options(item, path)
    condition = r.entry(r.required(item, "entry", path), (*path, "entry"))
    exit_after = reenter_after = None
    if "exit" in item:
        ex = r.mapping(item["exit"], (*path, "exit"), EXIT_KEYS, "exit")
        exit_after = r.span(r.required(ex, "after", (*path, "exit")), (*path, "exit", "after"))
        if "reenter_after" in ex:
            reenter_after = r.span(ex["reenter_after"], (*path, "exit", "reenter_after"))
    b = _Builder(r, key, path)
    b.add(JourneyNode(ENTRY, step_computation_key(key, ENTRY), "entry", (), (*path, "entry"), name), condition)
    steps = item.get("steps", [])
    if not isinstance(steps, list):
        raise r.fail((*path, "steps"), "steps must be a list")
    for i, raw in enumerate(steps):
        b.step(raw, (*path, "steps", i))
    b.check_dag()
    journey = Journey(key, name, tuple(b.nodes), path, exit_after, reenter_after)
    later = ir.Options(historical=False, include_anonymous=options.include_anonymous)
    by_key = {n.key: n for n in b.nodes}
    audiences: list[ir.JourneyStep] = []
    for n in b.nodes:
        own = b.conditions[n.key]
        parents = tuple(by_key[p].computation_key for p in n.parents)
        sibling = b.siblings.get(n.key)
        rule = ir.StepRule(journey=key, step=n.key, parents=parents, wait_seconds=n.wait_seconds,
                           exit_after_seconds=exit_after if n.kind == "entry" else None,
                           reenter_after_seconds=reenter_after if n.kind == "entry" else None,
                           sibling=by_key[sibling].computation_key if sibling else None,
                           bucket=b.buckets.get(n.key))
        if n.kind == "entry":
            assert own is not None
            cond: ir.Condition = own
        else:
            cond = _gate(parents) if own is None else ir.All((_gate(parents), own))
        label = n.name or n.key.replace("_", " ")
        audiences.append(ir.JourneyStep(key=n.computation_key, condition=cond,
                                        name=f"{name or key}: {label}" if n.kind != "entry" else (name or key),
                                        options=options if n.kind == "entry" else later, rule=rule))
    return journey, audiences
