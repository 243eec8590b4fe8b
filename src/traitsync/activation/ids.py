"""Stable message ids and identifier fan-out.

``messageId`` is derived, never random: the same (computation, profile, identifier, result
version, message kind, value) always gives the same id, so a crash-and-rerun of activation, a
replay from the dead letter, or a replay of the log into a fresh store sends ids a destination
can deduplicate (DESIGN 1); and since the value is part of it, one id never carries two values.
The engine's ``version`` is the log offset of the input that caused the change (see
docs/activation.md), so it does not depend on how the engine chunked its input.

Fan-out follows segment-spec 5.2 rule 4 and 5.7: without ID Sync every value of the default
identifiers is sent (each user_id, each email, and each anonymous_id when the computation
includes anonymous users) and custom identifiers are not; with ID Sync only the mapped types
are sent, each with its ``first``/``last``/``all`` strategy, at most three types using ``all``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from traitsync.activation.types import ANONYMOUS_ID, EMAIL, USER_ID, Identifier, IdStrategy

PREFIX = "personas_"
DEFAULT_TYPES = (USER_ID, EMAIL)
MAX_ALL_STRATEGIES = 3
_SEP = "\x1f"


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256(_SEP.join(parts).encode("utf-8")).hexdigest()[:32]


def message_id(computation_id: str, profile_id: str, identifier: Identifier, version: int, kind: str,
               value: Any) -> str:
    """``personas_`` + a hash of what makes this message unique (Segment's Engage prefix).

    ``value`` is the value the message sends (canonical JSON, keys sorted): two messages with
    one id always send the same value, whatever the version numbers of two runs.
    """
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return PREFIX + _digest((computation_id, profile_id, identifier.type, identifier.value, str(version), kind, text))


def list_message_id(computation_id: str, destination_id: str, sync_id: str, action: str, batch: int,
                    members: Sequence[Identifier]) -> str:
    """Id of one list operation batch: stable for the same sync run and the same members."""
    flat = [f"{m.type}:{m.value}" for m in members]
    return PREFIX + _digest((computation_id, destination_id, sync_id, action, str(batch), *flat))


def validate_id_sync(id_sync: Mapping[str, IdStrategy]) -> None:
    """Raise ``ValueError`` for an unknown strategy or more than three ``all`` strategies."""
    for id_type, strategy in id_sync.items():
        if strategy not in ("first", "last", "all"):
            raise ValueError(f"id_sync[{id_type!r}]: strategy must be first, last or all, not {strategy!r}")
    if sum(1 for s in id_sync.values() if s == "all") > MAX_ALL_STRATEGIES:
        raise ValueError(f"id_sync: at most {MAX_ALL_STRATEGIES} identifiers may use the 'all' strategy")


def _dedupe(identifiers: Iterable[Identifier]) -> list[Identifier]:
    seen: set[Identifier] = set()
    out: list[Identifier] = []
    for ident in identifiers:
        if ident not in seen and ident.value != "":
            seen.add(ident)
            out.append(ident)
    return out


def select_identifiers(identifiers: Sequence[Identifier], *, id_sync: Mapping[str, IdStrategy] | None = None,
                       include_anonymous: bool = False) -> list[Identifier]:
    """The identifiers to send one message each to; ``identifiers`` are in the order they were added."""
    ordered = _dedupe(identifiers)
    by_type: dict[str, list[Identifier]] = {}
    for ident in ordered:
        by_type.setdefault(ident.type, []).append(ident)
    plan: list[tuple[str, IdStrategy]]
    if id_sync is None:
        types = list(DEFAULT_TYPES) + ([ANONYMOUS_ID] if include_anonymous else [])
        plan = [(t, "all") for t in types]
    else:
        validate_id_sync(id_sync)
        plan = [(t, s) for t, s in id_sync.items() if t != ANONYMOUS_ID or include_anonymous]
    out: list[Identifier] = []
    for id_type, strategy in plan:
        values = by_type.get(id_type, [])
        if not values:
            continue
        if strategy == "first":
            out.append(values[0])
        elif strategy == "last":
            out.append(values[-1])
        else:
            out.extend(values)
    return out


def primary_identity(identifiers: Sequence[Identifier], profile_id: str) -> tuple[str, str]:
    """The ``userId``/``anonymousId`` a message for a non-id identifier (email...) carries.

    The most recently added user_id, else the most recent anonymous_id; a profile with neither
    (email-only, e.g. imported) uses its profile id as ``anonymousId`` so every message still
    names a user, as the Tracking spec requires.
    """
    for id_type, field in ((USER_ID, "userId"), (ANONYMOUS_ID, "anonymousId")):
        values = [i.value for i in identifiers if i.type == id_type and i.value]
        if values:
            return field, values[-1]
    return "anonymousId", profile_id
