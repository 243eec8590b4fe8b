"""Flat matching (segment-spec 2.3): create, add or merge, with the demotion loop and the caps.

The resolver works on an in-process cache of the graph (identifier -> canonical profile, and
each cached profile's identifiers with their creation times). The worker fills the cache for a
whole chunk before resolving it, so a chunk costs a few queries instead of one per event, and
the result does not depend on chunk size: the cache is only a view of the same graph.

The common events (an identifier set that already points at one profile, or a set of brand-new
identifiers of distinct types) take short paths that give exactly what the general create/add/
merge loop would: at 30,000 events/s there are about 30 microseconds per event for everything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from traitsync.identity.config import DAY_MS, IdentityConfig
from traitsync.identity.extract import Extracted, Identifier, extract
from traitsync.identity.pending import Pending, Row
from traitsync.spec.event import StoredEvent

USERS = "users"
ACCOUNTS = "accounts"
#: (collection, id_type, value)
Key = tuple[str, str, str]

LIMIT_EXCEEDED = "Identifier value limit exceeded"
TIME_LIMIT_EXCEEDED = "Identifier value time limit exceeded"
BLOCKED = "ID value blocked"
MERGE_LIMIT = "Profile merge limit exceeded"
MAPPING_LIMIT = "Identifier mapping limit exceeded"
NO_IDENTIFIERS = "No matching identifiers on event"
CATEGORIES = (LIMIT_EXCEEDED, TIME_LIMIT_EXCEEDED, BLOCKED, MERGE_LIMIT, MAPPING_LIMIT, NO_IDENTIFIERS)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: Two base62 digits at a time, least significant first (half the big-integer divisions).
_B62_PAIRS = tuple(_B62[i % 62] + _B62[i // 62] for i in range(62 * 62))


def profile_id_for(prefix: str, message_id: str) -> str:
    """A Segment-looking id derived from the creating message, so a replay recreates the same id.

    The digits are the hash's base62 digits, least significant first, without leading zeros.
    """
    number = int.from_bytes(hashlib.blake2b(message_id.encode(), digest_size=20,
                                            person=prefix.encode()[:16]).digest(), "big")
    pairs = []
    while number:
        number, rem = divmod(number, 3844)
        pairs.append(_B62_PAIRS[rem])
    digits = "".join(pairs)
    # The most significant digit is never 0; a trailing "0" is the unused half of the last pair.
    if digits.endswith("0"):
        digits = digits[:-1]
    return prefix + digits[:27]


class EventFields(Protocol):
    """What resolution reads of an event: ``StoredEvent``, or the worker's lighter row view."""

    @property
    def offset(self) -> int: ...

    @property
    def message_id(self) -> str: ...

    @property
    def source_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def event(self) -> str | None: ...

    @property
    def timestamp_ms(self) -> int: ...

    @property
    def traits(self) -> dict[str, Any]: ...


@dataclass
class ProfileState:
    """What resolution needs of a profile: age, merge count and identifiers with creation times."""

    profile_id: str
    collection: str
    created_offset: int
    created_at_ms: int
    merge_count: int
    updated_at_ms: int
    ids: dict[str, dict[str, int]] = field(default_factory=dict)
    mappings: int = 0

    def add(self, id_type: str, value: str, at_ms: int) -> None:
        bucket = self.ids.setdefault(id_type, {})
        if value not in bucket:
            bucket[value] = at_ms
            self.mappings += 1


@dataclass
class Resolution:
    user_profile: str | None
    account_profile: str | None
    promoted: list[Key]


class Resolver:
    """Resolves events one at a time against the cache, recording writes into ``pending``."""

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        self.idmap: dict[Key, str | None] = {}
        self.profiles: dict[str, ProfileState] = {}
        # user profile -> accounts it is linked to (what this process has written or seen; with
        # ``latest`` membership, every account, loaded through ``load_links`` on first use)
        self.links: dict[str, set[str]] = {}
        #: The store's links of a user as of the chunk's start (set by the worker for its transaction).
        self.load_links: Callable[[str], Iterable[str]] | None = None
        self.pending = Pending()

    # -- cache -----------------------------------------------------------------------------------
    def clear(self) -> None:
        self.idmap.clear()
        self.profiles.clear()
        self.links.clear()

    def keys_of(self, events: Iterable[StoredEvent]) -> tuple[list[tuple[StoredEvent, Extracted]], set[Key]]:
        """Extract every event of a chunk and the identifier keys the cache does not know yet."""
        out: list[tuple[StoredEvent, Extracted]] = []
        missing: set[Key] = set()
        for event in events:
            ex = extract(event, self.config)
            out.append((event, ex))
            for id_type, value in ex.users:
                key = (USERS, id_type, value)
                if key not in self.idmap:
                    missing.add(key)
            if ex.group_id is not None:
                key = (ACCOUNTS, "group_id", ex.group_id)
                if key not in self.idmap:
                    missing.add(key)
        return out, missing

    # -- resolution ------------------------------------------------------------------------------
    def resolve(self, event: EventFields, ex: Extracted) -> Resolution:
        user, account, promoted = self.resolve_event(event, ex)
        return Resolution(user, account, promoted)

    def resolve_event(self, event: EventFields, ex: Extracted) -> tuple[str | None, str | None, list[Key]]:
        """``resolve`` without the result object (the worker's per-event call)."""
        pending = self.pending
        for collection, id_type, value in ex.blocked:
            self._audit(event, "violation", BLOCKED, collection, None, None, id_type, value,
                        "the value matches a blocked value of this type; it stays in the payload only")
        user, promoted = self._resolve_users(event, list(ex.users))
        account: str | None = None
        if ex.group_id is not None:
            account = self._resolve_account(event, ex.group_id)
            promoted.append((ACCOUNTS, "group_id", ex.group_id))
            if user is not None:
                self._link(event, user, account)
        if user is None and account is None:
            self._audit(event, "violation", NO_IDENTIFIERS, USERS, None, None, None, None,
                        "the event carries no usable identifier, so it resolves to no profile")
        if user is not None and event.type == "identify":
            self._set_traits(event, user, USERS, event.traits)
        if account is not None:
            self._set_traits(event, account, ACCOUNTS, event.traits)
        if user is not None:
            self._touch(event, user)
        if account is not None:
            self._touch(event, account)
        pending.events.append((event.offset, user, account, event.type, event.event, event.timestamp_ms,
                               orjson.dumps(promoted).decode()))
        return user, account, promoted

    def _resolve_users(self, event: EventFields, ids: list[Identifier]) -> tuple[str | None, list[Key]]:
        if not ids:
            return None, []
        # Short paths, equal to one pass of the loop below: (1) every identifier already points
        # at the same profile, so nothing is new and nothing merges (no limit or cap can be hit);
        # (2) none is known and each type appears once, so a create holds one value per type,
        # within any limit (every limit is >= 1), and creates are never capped.
        idmap = self.idmap
        first = idmap.get((USERS, *ids[0]))
        if first is not None:
            for id_type, value in ids:
                if idmap.get((USERS, id_type, value)) != first:
                    break
            else:
                return first, [(USERS, t, v) for t, v in ids]
        elif len(ids) == 1 or (len({t for t, _ in ids}) == len(ids)
                               and all(idmap.get((USERS, t, v)) is None for t, v in ids[1:])):
            created = self._create(event, USERS, ids)
            return created, [(USERS, t, v) for t, v in ids]
        at = event.timestamp_ms
        while ids:
            matched: list[str] = []
            new: list[Identifier] = []
            for id_type, value in ids:
                pid = self.idmap.get((USERS, id_type, value))
                if pid is None:
                    new.append((id_type, value))
                elif pid not in matched:
                    matched.append(pid)
            states = [self.profiles[p] for p in matched]
            violation = self._limit_violation(states, new, at)
            if violation is not None:
                category, id_type, detail = violation
                if len(ids) > 1:
                    self._audit(event, "violation", category, USERS, matched[0] if matched else None, None,
                                id_type, ",".join(v for t, v in new if t == id_type) or None, detail)
                    weakest = max(range(len(ids)), key=lambda i: (self.config.priority_key(ids[i][0]), i))
                    dropped = ids.pop(weakest)
                    self._audit(event, "demoted", category, USERS, None, None, dropped[0], dropped[1],
                                f"lowest-priority identifier on the event, dropped because {detail}; "
                                "resolution reruns without it")
                    continue
            if not states:
                pid = self._create(event, USERS, ids)
                return pid, [(USERS, t, v) for t, v in ids]
            survivor = min(states, key=lambda s: s.created_offset)
            cap = self._cap_violation(states, new)
            if cap is not None:
                target = self._strongest_match(ids)
                self._audit(event, "violation", cap[0], USERS, target, None, None, None, cap[1])
                return target, [(USERS, t, v) for t, v in ids if self.idmap.get((USERS, t, v)) == target]
            for absorbed in sorted((s for s in states if s is not survivor), key=lambda s: s.created_offset):
                self._merge(event, survivor, absorbed)
            for id_type, value in new:
                self._map(event, survivor, id_type, value)
            return survivor.profile_id, [(USERS, t, v) for t, v in ids]
        return None, []

    def _strongest_match(self, ids: list[Identifier]) -> str:
        """At a cap the event resolves to the profile of its highest-priority matched identifier."""
        ranked = sorted(range(len(ids)), key=lambda i: (self.config.priority_key(ids[i][0]), i))
        for i in ranked:
            pid = self.idmap.get((USERS, *ids[i]))
            if pid is not None:
                return pid
        raise AssertionError("a cap is only checked when some identifier matched")

    def _limit_violation(self, states: list[ProfileState], new: list[Identifier],
                         at: int) -> tuple[str, str, str] | None:
        """The first type (by priority) whose limit the create/add/merge would break, if any."""
        if not new and len(states) <= 1:
            return None
        types = {t for t, _ in new}
        if len(states) > 1:
            for s in states:
                types.update(s.ids)
        for id_type in sorted(types, key=self.config.priority_key):
            rule = self.config.rule(id_type)
            since = None if rule.period_days is None else at - rule.period_days * DAY_MS

            def counted(bucket: dict[str, int], since: int | None = since) -> set[str]:
                return {v for v, t in bucket.items() if since is None or t > since}

            union: set[str] = set()
            worst = 0
            for s in states:
                own = counted(s.ids.get(id_type, {}))
                worst = max(worst, len(own))
                union |= own
            union |= {v for t, v in new if t == id_type}
            if len(union) > rule.limit and len(union) > worst:
                if rule.period_days is None:
                    return LIMIT_EXCEEDED, id_type, (f"the profile would hold {len(union)} {id_type} values "
                                                     f"(limit {rule.limit} ever)")
                return TIME_LIMIT_EXCEEDED, id_type, (
                    f"the profile would hold {len(union)} {id_type} values within {rule.period_days} days "
                    f"(limit {rule.limit})")
        return None

    def _cap_violation(self, states: list[ProfileState], new: list[Identifier]) -> tuple[str, str] | None:
        if len(states) > 1:
            merges = sum(s.merge_count for s in states) + len(states) - 1
            if merges > self.config.max_merges:
                return MERGE_LIMIT, (f"merging would give {merges} merges (cap {self.config.max_merges}); "
                                     "nothing was merged or mapped")
        if new or len(states) > 1:
            mappings = sum(s.mappings for s in states) + len(new)
            if mappings > self.config.max_mappings:
                return MAPPING_LIMIT, (f"the profile would hold {mappings} identifiers (cap "
                                       f"{self.config.max_mappings}); nothing was merged or mapped")
        return None

    # -- graph changes ---------------------------------------------------------------------------
    def _create(self, event: EventFields, collection: str, ids: list[Identifier]) -> str:
        prefix = "use_" if collection == USERS else "acc_"
        pid = profile_id_for(prefix, event.message_id)
        state = ProfileState(pid, collection, event.offset, event.timestamp_ms, 0, event.timestamp_ms)
        self.profiles[pid] = state
        self.pending.profiles.append((pid, collection, event.offset, event.timestamp_ms, event.timestamp_ms,
                                      event.message_id, event.source_id, event.message_id, event.source_id))
        for id_type, value in ids:
            self._map(event, state, id_type, value)
        return pid

    def _map(self, event: EventFields, state: ProfileState, id_type: str, value: str) -> None:
        key = (state.collection, id_type, value)
        self.idmap[key] = state.profile_id
        state.add(id_type, value, event.timestamp_ms)
        self.pending.ids.append((id_type, value, state.collection, state.profile_id, event.source_id,
                                 event.timestamp_ms, event.message_id, event.offset))
        self.pending.changes.append(("identifier_added", state.collection, state.profile_id, None, id_type, value,
                                     None, event.offset, event.message_id, event.timestamp_ms))

    def _merge(self, event: EventFields, survivor: ProfileState, absorbed: ProfileState) -> None:
        for id_type, bucket in absorbed.ids.items():
            for value, at in bucket.items():
                self.idmap[(survivor.collection, id_type, value)] = survivor.profile_id
                survivor.add(id_type, value, at)
        survivor.merge_count += absorbed.merge_count + 1
        survivor.created_at_ms = min(survivor.created_at_ms, absorbed.created_at_ms)
        survivor.updated_at_ms = max(survivor.updated_at_ms, absorbed.updated_at_ms)
        del self.profiles[absorbed.profile_id]
        if self.config.account_membership == "latest":  # both sets must be complete to be united
            self._links_of(survivor.profile_id)
            self._links_of(absorbed.profile_id)
        moved = self.links.pop(absorbed.profile_id, None)
        if moved:
            self.links.setdefault(survivor.profile_id, set()).update(moved)
        self.pending.merge(survivor.profile_id, absorbed.profile_id)
        self.pending.merges.append((survivor.profile_id, absorbed.profile_id, event.offset, event.message_id,
                                    event.source_id, event.timestamp_ms))
        self._audit(event, "merged", None, survivor.collection, survivor.profile_id, absorbed.profile_id, None,
                    None, "the event carried identifiers of both profiles; the older one survives")
        self.pending.changes.append(("merged", survivor.collection, survivor.profile_id, absorbed.profile_id,
                                     None, None, None, event.offset, event.message_id, event.timestamp_ms))

    def _links_of(self, user: str) -> set[str]:
        linked = self.links.get(user)
        if linked is None:
            loaded = self.load_links(user) if self.load_links is not None else ()
            linked = self.links[user] = set(loaded)
        return linked

    def _link(self, event: EventFields, user: str, account: str) -> None:
        """A ``group`` call links the user to the account; with ``latest`` membership it also ends
        the user's other links (a move). Both are published as ``linked`` / ``unlinked`` changes of
        the account (``other_profile_id`` is the user), which the realtime engine follows."""
        pending = self.pending
        if self.config.account_membership == "latest":
            linked = self._links_of(user)
            for other in sorted(linked - {account}):
                linked.discard(other)
                pending.unlink(user, other)
                pending.changes.append(("unlinked", ACCOUNTS, other, user, None, None, None, event.offset,
                                        event.message_id, event.timestamp_ms))
        else:
            linked = self.links.setdefault(user, set())
        if account in linked:
            return
        linked.add(account)
        pending.link((user, account, event.source_id, event.timestamp_ms, event.message_id))
        pending.changes.append(("linked", ACCOUNTS, account, user, None, None, None, event.offset,
                                event.message_id, event.timestamp_ms))

    def _resolve_account(self, event: EventFields, group_id: str) -> str:
        pid = self.idmap.get((ACCOUNTS, "group_id", group_id))
        if pid is not None:
            return pid
        return self._create(event, ACCOUNTS, [("group_id", group_id)])

    def _set_traits(self, event: EventFields, pid: str, collection: str, traits: dict[str, object]) -> None:
        if not traits:
            return
        rows: list[Row] = []
        for key, value in traits.items():
            text = None if value is None else orjson.dumps(value).decode()
            rows.append((pid, key, text, event.source_id, event.timestamp_ms, event.offset))
        self.pending.trait_rows(rows)
        self.pending.changes.append(("traits_changed", collection, pid, None, None, None,
                                     orjson.dumps(sorted(traits)).decode(), event.offset, event.message_id,
                                     event.timestamp_ms))

    def _touch(self, event: EventFields, pid: str) -> None:
        state = self.profiles[pid]
        if event.timestamp_ms > state.updated_at_ms:
            state.updated_at_ms = event.timestamp_ms
        self.pending.meta[pid] = (state.updated_at_ms, event.message_id, event.source_id, state.merge_count,
                                  state.created_at_ms)

    def _audit(self, event: EventFields, action: str, category: str | None, collection: str,
               profile_id: str | None, other: str | None, id_type: str | None, value: str | None,
               detail: str) -> None:
        self.pending.audit.append((event.offset, event.message_id, event.source_id, event.timestamp_ms, action,
                                   category, collection, profile_id, other, id_type, value, detail))
