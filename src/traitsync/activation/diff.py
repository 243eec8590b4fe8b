"""What to send, given what a destination last confirmed (STYLE rule 8; segment-spec 5.2).

Pure functions over a ``Snapshot`` per (destination, profile, computation): the value last
confirmed delivered and every identifier it was ever sent to. No SQL, no clock.

Event destinations (``plan_event_sync``):

* first sync: every member / every user with a value, to each selected identifier - unless the
  connection excludes historical data and this is the backfill, which records a silent baseline;
* value changed: the new value to each selected identifier;
* membership lost / trait cleared: to **every identifier ever sent** (exits ignore ID Sync, so a
  user is removed wherever they were added);
* unchanged: only identifiers gained since (a new email on a formerly anonymous profile), or all
  current identifiers after a merge;
* a change older than the snapshot's version is stale and sends nothing.

The snapshot moves forward only when delivery confirms: when ``plan.sends`` is empty store
``plan.snapshot`` right away, otherwise fold each delivered send in with ``confirm``.

List destinations (``plan_list_sync``): set algebra between the identifiers last uploaded and
the members' identifiers now; a list never uploaded is created and gets every member.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from traitsync.activation.types import CAUSE_BACKFILL, CAUSE_MERGE, Identifier, ResultChange

SendReason = Literal["first_sync", "changed", "new_identifier", "merge", "exit"]


@dataclass(frozen=True)
class Snapshot:
    """What one destination holds for one (profile, computation).

    ``baseline`` marks a value recorded without sending (historical data excluded), so gaining an
    identifier later does not leak a pre-connection membership.
    """

    value: Any
    identifiers: frozenset[Identifier]
    version: int
    baseline: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "identifiers": [[i.type, i.value] for i in sorted(self.identifiers)],
                "version": self.version, "baseline": self.baseline}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(value=data["value"], identifiers=frozenset(Identifier(t, v) for t, v in data["identifiers"]),
                   version=int(data["version"]), baseline=bool(data.get("baseline", False)))


@dataclass(frozen=True)
class Send:
    identifier: Identifier
    value: Any
    reason: SendReason


@dataclass(frozen=True)
class EventPlan:
    sends: tuple[Send, ...]
    snapshot: Snapshot | None


def normalize(kind: str, value: Any) -> Any:
    """Audiences are membership booleans (None = never computed = not a member)."""
    return bool(value) if kind == "audience" else value


def has_value(kind: str, value: Any) -> bool:
    """A member, or a trait with a value: what first sync sends and an exit takes away."""
    return value is True if kind == "audience" else value is not None


_PLAIN = frozenset({int, str, bool, type(None)})


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == True`` in Python, but ``1`` and ``true`` are different trait values."""
    if type(a) is type(b) and type(a) in _PLAIN:
        return bool(a == b)
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def plan_event_sync(snapshot: Snapshot | None, change: ResultChange, identifiers: Sequence[Identifier], *,
                    historical: bool = True) -> EventPlan:
    """The sends one result change causes at one event destination (see the module docstring).

    ``identifiers`` are the profile's identifiers after ID Sync (``ids.select_identifiers``).
    """
    kind = change.computation.kind
    new = normalize(kind, change.new_value)
    if snapshot is not None and change.version < snapshot.version:
        return EventPlan((), snapshot)
    current = list(dict.fromkeys(identifiers))
    sends: list[Send]
    if snapshot is None:
        if not has_value(kind, new):
            return EventPlan((), None)
        if not historical and change.cause == CAUSE_BACKFILL:
            return EventPlan((), Snapshot(new, frozenset(), change.version, baseline=True))
        sends = [Send(i, new, "first_sync") for i in current]
    elif not same_value(new, snapshot.value):
        if has_value(kind, new):
            sends = [Send(i, new, "changed") for i in current]
        else:
            sends = [Send(i, new, "exit") for i in sorted(snapshot.identifiers)]
    elif not has_value(kind, new) or snapshot.baseline:
        sends = []
    elif change.cause == CAUSE_MERGE:
        sends = [Send(i, new, "merge") for i in current]
    else:
        sends = [Send(i, new, "new_identifier") for i in current if i not in snapshot.identifiers]
    before = snapshot.identifiers if snapshot is not None else frozenset()
    baseline = snapshot.baseline and not sends if snapshot is not None else False
    return EventPlan(tuple(sends), Snapshot(new, before | {s.identifier for s in sends}, change.version,
                                            baseline=baseline))


def confirm(snapshot: Snapshot | None, send: Send, version: int) -> Snapshot:
    """Fold one delivered send into the snapshot (called when delivery confirms it)."""
    if snapshot is None:
        return Snapshot(send.value, frozenset({send.identifier}), version)
    if version < snapshot.version:
        return replace(snapshot, identifiers=snapshot.identifiers | {send.identifier})
    return Snapshot(send.value, snapshot.identifiers | {send.identifier}, version)


@dataclass(frozen=True)
class ListMember:
    profile_id: str
    identifier: Identifier


@dataclass(frozen=True)
class ListDiff:
    create: bool
    adds: tuple[ListMember, ...]
    removes: tuple[ListMember, ...]

    @property
    def empty(self) -> bool:
        return not (self.create or self.adds or self.removes)


def plan_list_sync(uploaded: Mapping[str, frozenset[Identifier]] | None,
                   members: Mapping[str, Sequence[Identifier]]) -> ListDiff:
    """Adds and removes that bring the destination's list from ``uploaded`` to ``members``.

    ``uploaded`` maps profile id -> identifiers the list holds (``None``: the list does not exist
    yet); ``members`` maps each current member to its selected identifiers. A profile that left
    loses every identifier it had on the list; a member that lost an email loses that email.
    """
    held = uploaded or {}
    adds: list[ListMember] = []
    removes: list[ListMember] = []
    for profile_id in sorted(set(held) | set(members)):
        now = frozenset(members.get(profile_id, ()))
        before = held.get(profile_id, frozenset())
        adds.extend(ListMember(profile_id, i) for i in sorted(now - before))
        removes.extend(ListMember(profile_id, i) for i in sorted(before - now))
    return ListDiff(create=uploaded is None, adds=tuple(adds), removes=tuple(removes))
