"""Journey steps in the realtime engine: an audience made sticky, timed and forward-only.

A step is compiled like any audience (its condition already requires membership of a parent
step, so the engine orders it after its parents and re-evaluates it when one changes); this
class adds what Journeys v1 means on top of that value:

* **joined time.** When a step is joined, ``state.agg = {"t": joined_ms}`` (the state slot only
  running-aggregate traits use, so no new column). It is the ``step_joined_time`` that waits
  count from, and is stored with the profile's state document.
* **waits.** A step is not joined before a parent's joined time plus the wait; until then the
  evaluation returns that moment as the due time, so the due-time index wakes the engine then.
* **forward only.** A member stays a member whatever its condition does later; a true/false
  branch is never joined while its sibling is; a randomised branch is chosen by a hash of the
  journey and profile, so a user who re-enters takes the same branch.
* **exit and re-entry** (entry step only): the entry leaves ``exit_after`` after it was joined,
  which cascades to every later step (they leave when no parent is a member); it may be joined
  again once ``reenter_after`` has passed since that exit. ``{"x": exited_ms, "n": entries}``
  are kept next to ``"t"``.

The reference evaluator has no memory, so it cannot hold journeys to this meaning; the
journey tests check the engine directly against the expected step path of each user.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from traitsync.compute.realtime.state import Compiled, ProfileState, State
from traitsync.definitions import ir


def random_bucket(journey: str, profile_id: str, of: int = 100) -> int:
    """A user's bucket in ``[0, of)`` for a journey's randomised splits: stable across entries."""
    digest = hashlib.sha256(f"{journey}:{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % of


def joined_at(state: State | None) -> int | None:
    """When the step held by ``state`` was joined (None when the user is not a member)."""
    if state is None or not state.value:
        return None
    agg = state.agg
    joined = agg.get("t") if isinstance(agg, dict) else None
    return int(joined) if joined is not None else 0


class JourneyStepCompiled(Compiled):
    """A :class:`Compiled` audience with the journey rule of its :class:`ir.JourneyStep` applied."""

    def __init__(self, defn: ir.JourneyStep, created_at_ms: int) -> None:
        super().__init__(defn, created_at_ms)
        self.rule = defn.rule
        self.wait_ms = defn.rule.wait_seconds * 1000
        self.exit_ms = None if defn.rule.exit_after_seconds is None else defn.rule.exit_after_seconds * 1000
        self.reenter_ms = (None if defn.rule.reenter_after_seconds is None
                           else defn.rule.reenter_after_seconds * 1000)

    def evaluate(self, state: State, prof: ProfileState, traits: Mapping[str, Any], eligible: bool,
                 now: int) -> tuple[Any, int | None]:
        if self.rule.is_entry:
            return self._entry(state, prof, traits, eligible, now)
        return self._step(state, prof, traits, eligible, now)

    def _entry(self, state: State, prof: ProfileState, traits: Mapping[str, Any], eligible: bool,
               now: int) -> tuple[Any, int | None]:
        info: dict[str, Any] = state.agg if isinstance(state.agg, dict) else {}
        if state.value:
            if self.exit_ms is None:
                return True, None
            ends = int(info.get("t") or 0) + self.exit_ms
            if now < ends:
                return True, ends
            state.agg = {**info, "t": None, "x": ends}
            return False, None if self.reenter_ms is None else ends + self.reenter_ms
        left = info.get("x")
        if left is not None:
            if self.reenter_ms is None:
                return False, None  # exited, and the journey does not let users back in
            opens = int(left) + self.reenter_ms
            if now < opens:
                return False, opens
        value, due = super().evaluate(state, prof, traits, eligible, now)
        if not value:
            return False, due
        state.agg = {**info, "t": now, "n": int(info.get("n", 0)) + 1}
        return True, None if self.exit_ms is None else now + self.exit_ms

    def _step(self, state: State, prof: ProfileState, traits: Mapping[str, Any], eligible: bool,
              now: int) -> tuple[Any, int | None]:
        states = prof.states
        parents = [t for t in (joined_at(states.get(p)) for p in self.rule.parents) if t is not None]
        if state.value:
            if parents:
                return True, None
            state.agg = None  # every parent left: the journey instance ended (exit)
            return False, None
        if not parents:
            return False, None
        sibling = self.rule.sibling
        if sibling is not None and joined_at(states.get(sibling)) is not None:
            return False, None
        ready = min(parents) + self.wait_ms
        if now < ready:
            return False, ready
        bucket = self.rule.bucket
        if bucket is not None:
            if not eligible or prof.pid is None:
                return False, None
            value: Any = bucket[0] <= random_bucket(self.rule.journey, prof.pid, self.rule.of) < bucket[1]
            due = None
        else:
            value, due = super().evaluate(state, prof, traits, eligible, now)
        if not value:
            return False, due
        state.agg = {"t": now}
        return True, None


def compile_for(defn: ir.Definition, created_at_ms: int) -> Compiled:
    """The engine's compiled form of a definition: journey steps get their rule applied."""
    if isinstance(defn, ir.JourneyStep):
        return JourneyStepCompiled(defn, created_at_ms)
    return Compiled(defn, created_at_ms)
