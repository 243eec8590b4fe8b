"""The activation worker: computation results and profile changes in, outbox messages out.

It consumes two durable streams, each with its own checkpoint (``traitsync.log.Checkpoints``):

* ``computation_results`` (one row per change of a value, from the engines): each row is diffed,
  for every event destination connected to its computation, against what that destination
  holds (``state.load_planned``) and turned into the seeds' payloads (``payloads.activate``);
* ``profile_changes`` (from identity): ``identifier_added`` re-sends the value a destination
  holds to identifiers it has not seen (a new email on a formerly anonymous profile), and
  ``merged`` re-sends the survivor's value to all its identifiers and sends exits to the
  absorbed profile's identifiers when the survivor does not hold what they were sent.

Messages, snapshots that need no delivery, and the checkpoint commit in **one transaction**
(the outbox is in the same store), so a crash replays exactly the unsaved chunk and the
outbox's unique ``(destination, messageId)`` makes the replay enqueue nothing twice.

**Confirmations** arrive as data: each round first folds the messages delivery marked delivered
(``state.apply_receipts``) into what each destination holds.

**What adapters see.** Each message is enqueued with the destination's previous state of that
(profile, computation) (old value, identifiers it went to) and the profile traits the adapter
requires or the link asks for (``enrich_traits``, which also go into the message: ``traits.*``
on identify, ``properties.*`` on track, as Segment's Trait Enrichment does).

**First sync.** A connection seen for the first time records the results head ``H`` and sends
every profile with a value in ``computed_values`` (cause ``backfill``, which ``historical:
false`` turns into a silent baseline); results at or below ``H`` are skipped for it because the
current values already include them.

**Profile changes wait for the engine.** A merge is acted on only once the realtime engine has
processed it (its ``realtime.changes`` checkpoint, when the engine runs) and activation has read
every result up to then, so the survivor's post-merge value is what gets re-sent.

**Account-level computations** (``accounts.py``). A result of an account (``acc_...``) becomes
one ``group`` call to destinations with ``send: [group]`` (the account's ``group_id`` stands in
for the identifier), and, with ``send: [identify]`` / ``[track]``, a re-derivation of the value
each **member user** holds, planned against that user's snapshot like a user computation.
Members are re-derived when their account's result changes, when they are linked to an account
(a resolved ``group`` call in ``profile_events``, read with its own checkpoint
``activation.links``: a join or a move), when a ``profile_changes`` row links or unlinks them
(an ended link), and after a merge. Deriving the current value makes a join send the entry, a
leave the exit, and a repeated trigger nothing.

One activation worker runs per store; the DestinationWorkers deliver in parallel to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from traitsync.activation.accounts import (
    canonical,
    events_head,
    link_change_user,
    linked_users,
    load_group_ids,
    member_values,
    members_of,
)
from traitsync.activation.config import ActivationConfig, ActivationDestination, DestinationLink
from traitsync.activation.consent import FILTERED_BY_CONSENT, consented
from traitsync.activation.diff import Snapshot, has_value, normalize, same_value
from traitsync.activation.payloads import activate, activate_group
from traitsync.activation.profiles import load_identifiers, load_traits
from traitsync.activation.state import SnapshotKey, apply_receipts, load_planned, send_meta, store_snapshot
from traitsync.activation.types import (
    CAUSE_BACKFILL,
    CAUSE_EVENT,
    CAUSE_IDENTIFIER,
    CAUSE_MERGE,
    CAUSE_TIME,
    ComputationKind,
    Identifier,
    Message,
    ResultChange,
)
from traitsync.delivery import receipts
from traitsync.delivery.outbox import Outbox, now_ms
from traitsync.log import Checkpoints
from traitsync.store.database import Connection as DbConnection
from traitsync.store.database import Database, OwnedConnection
from traitsync.workers import PollingWorker

log = structlog.get_logger("traitsync.activation")

RESULTS_CONSUMER = "activation.results"
PROFILES_CONSUMER = "activation.profile_changes"
LINKS_CONSUMER = "activation.links"
#: Most ``profile_events`` offsets the link stream looks through per round.
LINKS_WINDOW = 20_000
#: Members assumed per account when sizing a first-sync chunk of accounts sent per member.
MEMBERS_PER_ACCOUNT = 20
ENGINE_CHANGES_CONSUMER = "realtime.changes"
_CAUSES = {"backfill": CAUSE_BACKFILL, "merge": CAUSE_MERGE, "timer": CAUSE_TIME}


def result_cause(cause: str) -> str:
    """The engine's ``cause`` (messageId | timer | merge | backfill | trait:<key>) in diff's terms."""
    return _CAUSES.get(cause, CAUSE_EVENT)


@dataclass(frozen=True)
class Work:
    """One thing to plan at one destination: a result change, a re-sync, or a merge exit.

    ``resync`` re-sends the value the destination holds (cause identifier_added or merge);
    ``survivor`` marks an exit check for a profile absorbed into ``survivor``; ``group`` sends an
    account's change as a ``group`` call; ``derive`` re-derives what a member user of an account
    computation holds (``accounts.member_value``), stamped ``at_ms`` with ``cause``.
    """

    destination: ActivationDestination
    link: DestinationLink
    profile_id: str
    change: ResultChange | None = None
    resync: str | None = None
    survivor: str | None = None
    group: bool = False
    derive: bool = False
    at_ms: int = 0
    cause: str = CAUSE_EVENT


def sends_to_members(link: DestinationLink) -> bool:
    """An account computation sent as identify/track to each member user of the account."""
    return link.computation.level == "account" and (link.settings.send_identify or link.settings.send_track)


class ActivationWorker(OwnedConnection, PollingWorker):
    """Turn result changes into outbox messages for every connected event destination."""

    name = "activation"

    def __init__(self, db: Database, config: ActivationConfig, *, batch: int = 500, poll_interval: float = 0.05,
                 clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.config = config
        self.routes = self.config.event_links()
        #: Connections that send account computations per member user, and those computations' kinds.
        self.member_links = [(d, c) for pairs in self.routes.values() for d, c in pairs if sends_to_members(c)]
        self.account_kinds: dict[str, ComputationKind] = {c.computation.key: c.computation.kind
                                                          for _, c in self.member_links}
        self.batch = batch
        self.poll_interval = poll_interval
        self.clock = clock
        self.outbox = Outbox(db, clock=clock)
        self.enqueued = 0
        self._conn: DbConnection | None = None
        self._derived: dict[tuple[str, str], Any] = {}

    @property
    def conn(self) -> DbConnection:
        return self.connection()

    # -- loop ------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One round: first syncs, one chunk of results, one chunk of profile changes.

        Returns how many rows (results, profile changes, first-sync profiles) were handled.
        """
        if not self.routes:
            return 0
        handled = self.apply_confirmations()
        engine_seen = self._engine_changes_checkpoint()
        handled += self._first_syncs()
        results = self._results()
        handled += results
        if results < self.batch:
            handled += self._profile_changes(engine_seen)
        if self.member_links:
            handled += self._account_links()
        return handled

    def drain(self, timeout: float = 30.0) -> int:
        """Run rounds until nothing is left (tests, the demo, ``destinations sync``)."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            n = self.run_once()
            total += n
            if not n:
                break
        return total

    # -- streams ---------------------------------------------------------------------------------

    def apply_confirmations(self) -> int:
        """Fold what delivery confirmed into what each destination holds; returns how many."""
        conn = self.conn
        waiting = receipts.any_unapplied(conn)
        conn.commit()
        if not waiting:
            return 0  # no write lock when there is nothing to fold (SQLite has one for the store)
        with conn.transaction():
            return apply_receipts(conn)

    def _engine_changes_checkpoint(self) -> int | None:
        conn = self.conn
        value = conn.scalar('SELECT "offset" FROM checkpoints WHERE consumer = ?', (ENGINE_CHANGES_CONSUMER,))
        conn.commit()
        return None if value is None else int(value)

    def _connection_rows(self, conn: DbConnection) -> dict[tuple[str, str], tuple[int, str | None, bool]]:
        return {(str(d), str(c)): (int(o), cur, bool(done)) for d, c, o, cur, done in conn.fetchall(
            "SELECT destination_id, computation_id, from_offset, first_sync_cursor, first_sync_done"
            " FROM activation_connections")}

    def _first_syncs(self) -> int:
        conn = self.conn
        with conn.transaction():
            known = self._connection_rows(conn)
            head = int(conn.scalar('SELECT MAX("offset") FROM computation_results') or 0)
            for dest in self.config.event_destinations:
                for link in dest.links:
                    if (dest.id, link.computation.id) not in known:
                        conn.execute(
                            "INSERT INTO activation_connections (destination_id, computation_id, computation_key,"
                            " from_offset, first_sync_cursor, first_sync_done, created_at_ms)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (dest.id, link.computation.id, link.computation.key, head, "", False,
                             self.clock()))
                        known[(dest.id, link.computation.id)] = (head, "", False)
        handled = 0
        for dest in self.config.event_destinations:
            for link in dest.links:
                _, cursor, done = known[(dest.id, link.computation.id)]
                if not done:
                    handled += self._first_sync_chunk(dest, link, cursor or "")
        return handled

    def _first_sync_chunk(self, dest: ActivationDestination, link: DestinationLink, cursor: str) -> int:
        conn = self.conn
        comp = link.computation
        # Accounts sent per member fan out to every user of each: fewer of them per transaction.
        limit = max(1, self.batch // MEMBERS_PER_ACCOUNT) if sends_to_members(link) else self.batch
        with conn.transaction():
            rows = conn.fetchall(
                "SELECT profile_id, value, version, updated_at_ms FROM computed_values WHERE computation_key = ?"
                " AND profile_id > ? ORDER BY profile_id LIMIT ?", (comp.key, cursor, limit))
            work: list[Work] = []
            fanout: list[tuple[ActivationDestination, DestinationLink, str, int, str]] = []
            for pid, value, version, at in rows:
                change = ResultChange(profile_id=str(pid), computation=comp, old_value=None,
                                      new_value=None if value is None else json.loads(value), version=int(version),
                                      as_of_ms=int(at), cause=CAUSE_BACKFILL)
                self._route(dest, link, change, work, fanout)
            work.extend(self._member_work(conn, fanout))
            self._apply(conn, work)
            done = len(rows) < limit
            conn.execute(
                "UPDATE activation_connections SET first_sync_cursor = ?, first_sync_done = ?, completed_at_ms = ?"
                " WHERE destination_id = ? AND computation_id = ?",
                (None if done else str(rows[-1][0]), done, self.clock() if done else None, dest.id, comp.id))
        if done:
            log.info("first sync done", destination=dest.id, computation=comp.key)
        return len(rows)

    def _results(self) -> int:
        conn = self.conn
        with conn.transaction():
            after = Checkpoints.get(conn, RESULTS_CONSUMER)
            rows = conn.fetchall(
                'SELECT "offset", computation_key, profile_id, old_value, new_value, version, as_of_ms, cause'
                ' FROM computation_results WHERE "offset" > ? ORDER BY "offset" LIMIT ?', (after, self.batch))
            if not rows:
                return 0
            starts = {k: v[0] for k, v in self._connection_rows(conn).items()}
            work: list[Work] = []
            fanout: list[tuple[ActivationDestination, DestinationLink, str, int, str]] = []
            for offset, key, pid, old, new, version, as_of, cause in rows:
                for dest, link in self.routes.get(str(key), ()):
                    start = starts.get((dest.id, link.computation.id))
                    if start is None or int(offset) <= start:
                        continue  # covered by this link's first sync
                    self._route(dest, link, ResultChange(
                        profile_id=str(pid), computation=link.computation,
                        old_value=None if old is None else json.loads(old),
                        new_value=None if new is None else json.loads(new), version=int(version),
                        as_of_ms=int(as_of), cause=result_cause(str(cause))), work, fanout)
            work.extend(self._member_work(conn, fanout))
            self._apply(conn, work)
            Checkpoints.set(conn, RESULTS_CONSUMER, int(rows[-1][0]))
        return len(rows)

    def _profile_changes(self, engine_seen: int | None) -> int:
        conn = self.conn
        with conn.transaction():
            after = Checkpoints.get(conn, PROFILES_CONSUMER)
            sql = ('SELECT "offset", kind, collection, profile_id, other_profile_id FROM profile_changes'
                   ' WHERE "offset" > ?')
            params: list[Any] = [after]
            if engine_seen is not None:
                sql += ' AND "offset" <= ?'
                params.append(engine_seen)
            rows = conn.fetchall(sql + ' ORDER BY "offset" LIMIT ?', (*params, self.batch))
            if not rows:
                return 0
            links = [(d, c) for pairs in self.routes.values() for d, c in pairs]
            work: list[Work] = []
            relinked: list[str] = []
            for _, kind, collection, pid, other in rows:
                user = link_change_user(str(kind), str(pid), None if other is None else str(other))
                if user is not None:
                    relinked.append(user)  # a link ended (or began) without a group call
                    continue
                if collection != "users":
                    continue
                if kind == "identifier_added":
                    work.extend(Work(d, c, str(pid), resync=CAUSE_IDENTIFIER) for d, c in links)
                elif kind == "merged":
                    if other:
                        work.extend(Work(d, c, str(other), survivor=str(pid)) for d, c in links)
                    work.extend(Work(d, c, str(pid), resync=CAUSE_MERGE) for d, c in links)
                    relinked.append(str(pid))  # the survivor gained the absorbed profile's accounts
            work.extend(self._relinked_work(conn, relinked, self.clock()))
            self._apply(conn, work)
            Checkpoints.set(conn, PROFILES_CONSUMER, int(rows[-1][0]))
        return len(rows)

    def _account_links(self) -> int:
        """Users linked to an account since the last round (resolved ``group`` calls): re-derive
        what they hold of every account computation sent per member. The checkpoint moves over a
        bounded window of offsets, so a stream without group calls costs one short range scan."""
        conn = self.conn
        stored = conn.scalar('SELECT "offset" FROM checkpoints WHERE consumer = ?', (LINKS_CONSUMER,))
        head = events_head(conn)
        conn.commit()
        if stored is not None and head <= int(stored):
            return 0  # no write lock when no event arrived (SQLite has one for the store)
        with conn.transaction():
            stored = conn.scalar('SELECT "offset" FROM checkpoints WHERE consumer = ?', (LINKS_CONSUMER,))
            head = events_head(conn)
            if stored is None:  # first run: the first syncs send the links made so far
                Checkpoints.set(conn, LINKS_CONSUMER, head)
                return 0
            after = int(stored)
            if head <= after:
                return 0
            upto = min(head, after + LINKS_WINDOW)
            rows = linked_users(conn, after, upto)
            by_time: dict[int, list[str]] = {}
            for _, user, ts in rows:
                by_time.setdefault(ts, []).append(user)
            work: list[Work] = []
            for ts, users in sorted(by_time.items()):
                work.extend(self._relinked_work(conn, users, ts))
            self._apply(conn, work)
            Checkpoints.set(conn, LINKS_CONSUMER, upto)
        return len(rows)

    # -- accounts --------------------------------------------------------------------------------

    def _route(self, dest: ActivationDestination, link: DestinationLink, change: ResultChange, work: list[Work],
               fanout: list[tuple[ActivationDestination, DestinationLink, str, int, str]]) -> None:
        """A result change as work: as is (user level), or a group call and/or the account's
        members to re-derive (account level; their ids are looked up per chunk by ``_member_work``)."""
        if link.computation.level != "account":
            work.append(Work(dest, link, change.profile_id, change=change))
            return
        if link.settings.send_group:
            work.append(Work(dest, link, change.profile_id, change=change, group=True))
        if sends_to_members(link):
            fanout.append((dest, link, change.profile_id, change.as_of_ms, change.cause))

    def _member_work(self, conn: DbConnection,
                     fanout: Sequence[tuple[ActivationDestination, DestinationLink, str, int, str]]) -> list[Work]:
        """Every current member of each changed account, to re-derive (users who left earlier were
        re-derived when they left)."""
        if not fanout:
            return []
        members = members_of(conn, sorted({account for _, _, account, _, _ in fanout}))
        return [Work(dest, link, user, derive=True, at_ms=at, cause=cause)
                for dest, link, account, at, cause in fanout for user in members.get(account, ())]

    def _relinked_work(self, conn: DbConnection, users: Sequence[str], at_ms: int) -> list[Work]:
        """Users whose accounts changed: re-derive them (as their surviving profile) on every
        connection that sends account computations per member."""
        if not users or not self.member_links:
            return []
        alive = sorted(set(canonical(conn, sorted(set(users))).values()))
        return [Work(d, c, user, derive=True, at_ms=at_ms) for user in alive for d, c in self.member_links]

    # -- planning --------------------------------------------------------------------------------

    def _apply(self, conn: DbConnection, work: Sequence[Work]) -> None:
        """Plan every piece of work against the planned view and enqueue what it sends."""
        if not work:
            return
        work = _dedupe_derived(work)
        profiles = {w.profile_id for w in work} | {w.survivor for w in work if w.survivor}
        identifiers = load_identifiers(conn, sorted(profiles))
        accounts = sorted({w.profile_id for w in work if w.group})
        if accounts:
            identifiers.update(load_group_ids(conn, accounts))
        deriving = sorted({w.profile_id for w in work if w.derive})
        self._derived = member_values(conn, deriving, self.account_kinds) if deriving else {}
        trait_keys = {k for w in work for k in (*w.destination.required_traits, *w.link.enrich_traits)}
        traits = load_traits(conn, sorted(profiles), trait_keys)
        by_dest: dict[str, list[Work]] = {}
        for w in work:
            by_dest.setdefault(w.destination.id, []).append(w)
        outgoing: list[tuple[Any, ...]] = []
        for dest_id, items in by_dest.items():
            planned, pending = load_planned(conn, dest_id, sorted(profiles))
            for w in items:
                self._plan_one(conn, w, planned, pending, identifiers, traits, outgoing)
        self.enqueued += self.outbox.enqueue_rows(conn, outgoing)

    def _change_for(self, w: Work, planned: dict[SnapshotKey, Snapshot]) -> ResultChange | None:
        comp = w.link.computation
        if w.change is not None:
            return w.change
        snap = planned.get((w.profile_id, comp.id))
        if w.derive:
            new = self._derived.get((w.profile_id, comp.key))
            if snap is None:
                version = 1
            else:  # an unchanged value keeps its version: re-deriving it plans nothing new
                version = snap.version if same_value(normalize(comp.kind, new), snap.value) else snap.version + 1
            return ResultChange(w.profile_id, comp, None if snap is None else snap.value, new, version,
                                w.at_ms or self.clock(), w.cause)
        if w.resync is not None:
            if snap is None:
                return None
            return ResultChange(w.profile_id, comp, snap.value, snap.value, snap.version, self.clock(), w.resync)
        assert w.survivor is not None
        held = planned.get((w.survivor, comp.id))
        if snap is None or snap.baseline or not has_value(comp.kind, snap.value):
            return None
        if held is not None and has_value(comp.kind, held.value):
            return None  # the survivor's re-sync sends its value to these identifiers instead
        gone: Any = False if comp.kind == "audience" else None
        return ResultChange(w.profile_id, comp, snap.value, gone, snap.version + 1, self.clock(), CAUSE_MERGE)

    def _plan_one(self, conn: DbConnection, w: Work, planned: dict[SnapshotKey, Snapshot], pending: set[SnapshotKey],
                  identifiers: dict[str, list[Identifier]], traits: dict[str, dict[str, Any]],
                  outgoing: list[tuple[Any, ...]]) -> None:
        """Plan one piece of work; the messages it sends are appended to ``outgoing`` (inserted in
        order, once per chunk, by ``_apply``)."""
        change = self._change_for(w, planned)
        if change is None or _journey_holds_back(w, change, planned):
            return
        dest = w.destination
        key = (w.profile_id, change.computation.id)
        snap = planned.get(key)
        idents = identifiers.get(w.survivor or w.profile_id, [])
        if w.resync == CAUSE_IDENTIFIER and snap is not None and snap.identifiers.issuperset(idents):
            return  # every identifier already holds the value: nothing to send (the common case)
        if w.group:
            plan, messages = activate_group(change, snap, idents, dest.target, w.link.settings)
        else:
            plan, messages = activate(change, snap, idents, dest.target, w.link.settings)
        if plan.sends:
            owner = w.survivor or w.profile_id
            # Held back, and shown as filtered in the overview, for a profile that has not consented.
            # A group call is about an account, not an end user: consent does not apply to it.
            withheld = FILTERED_BY_CONSENT if dest.consent_categories and not w.group and not consented(
                conn, owner, dest.consent_categories) else None
            profile_traits = traits.get(owner, {})
            adapter_input = _adapter_input(snap, {k: profile_traits[k] for k in dest.required_traits
                                                  if k in profile_traits})
            for message, send in messages:
                _enrich(message, {k: profile_traits[k] for k in w.link.enrich_traits if k in profile_traits})
                outgoing.append(self.outbox.row(
                    dest.id, w.profile_id, message, computation_id=change.computation.id,
                    meta=send_meta(w.profile_id, change.computation.id, send, change.version),
                    at_ms=self.clock(), adapter_input=adapter_input, filtered_reason=withheld))
            pending.add(key)
        elif plan.snapshot is not None and plan.snapshot != snap and key not in pending:
            # Nothing to deliver (baseline, no identifiers yet, a newer version of the same value):
            # the destination's state is already what it holds, so record it now.
            store_snapshot(conn, dest.id, key, plan.snapshot)
        if plan.snapshot is not None:
            planned[key] = plan.snapshot


def _dedupe_derived(work: Sequence[Work]) -> list[Work]:
    """One re-derivation per (destination, computation, user) and chunk: a user in several changed
    accounts, or an account changed twice, is asked "what do you hold now?" once."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Work] = []
    for w in work:
        if w.derive:
            key = (w.destination.id, w.link.computation.id, w.profile_id)
            if key in seen:
                continue
            seen.add(key)
        out.append(w)
    return out


def _journey_holds_back(w: Work, change: ResultChange, planned: dict[SnapshotKey, Snapshot]) -> bool:
    """Journey steps: an exit of a journey without exit settings is never sent, and an entry is not
    sent when another step of the same journey already went to this destination in this instance
    (Journeys v1: "a user reaching the same destination twice is sent only once")."""
    link = w.link
    if link.journey is None:
        return False
    if not has_value("audience", change.new_value):
        return not link.journey_exits
    own = planned.get((w.profile_id, link.computation.id))
    if own is not None and not own.baseline and has_value("audience", own.value):
        return False  # this step was sent: re-syncs to new identifiers still go
    for other in w.destination.links:
        if other.journey != link.journey or other.computation.id == link.computation.id:
            continue
        snap = planned.get((w.profile_id, other.computation.id))
        if snap is not None and not snap.baseline and has_value("audience", snap.value):
            return True
    return False


def _adapter_input(previous: Snapshot | None, traits: dict[str, Any]) -> dict[str, Any] | None:
    """What the adapter sees besides the message: the destination's previous state and traits."""
    out: dict[str, Any] = {}
    if previous is not None and not previous.baseline:
        out["previous"] = {"value": previous.value,
                           "identifiers": [[i.type, i.value] for i in sorted(previous.identifiers)]}
    if traits:
        out["traits"] = traits
    return out or None


def _enrich(message: Message, traits: dict[str, Any]) -> None:
    """Trait Enrichment: the chosen traits go in ``traits`` on identify and group (the account's own
    traits there), ``properties`` on track."""
    if not traits:
        return
    if message.get("type") in ("identify", "group"):
        message.setdefault("traits", {}).update({k: v for k, v in traits.items() if k not in message["traits"]})
    elif message.get("type") == "track":
        props = message.setdefault("properties", {})
        props.update({k: v for k, v in traits.items() if k not in props})
