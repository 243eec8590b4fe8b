"""The realtime engine: fold resolved events and profile changes into state, emit every change.

It reads two streams identity commits together (``profile_events`` and ``profile_changes``)
up to identity's checkpoint, interleaved by event offset so that each event is applied to the
profile that was canonical when it was resolved, and writes states, due times, current values,
results and both checkpoints in ONE transaction. An engine may own one partition of the
profiles (``partitions.py``): it then reads only its partition's rows, with its own checkpoints,
and several engines share the store. The in-memory cache is only a cache: it is
dropped whenever a transaction fails, so a crash can never leave memory ahead of the store.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from traitsync.compute.realtime import accounts
from traitsync.compute.realtime.ownership import Ownership
from traitsync.compute.realtime.partitions import (
    Partition,
    PartitionLayoutError,
    ensure_layout,
    publish_progress,
    stored_layout,
)
from traitsync.compute.realtime.registry import Registry
from traitsync.compute.realtime.state import Compiled, ProfileState, State, make_record
from traitsync.compute.realtime.store import (
    Output,
    account_page,
    accounts_of,
    dumps,
    load_identifiers,
    load_states,
    load_traits,
    members_as_of,
    members_of,
    profile_history,
    read_events,
    serialise_writers,
)
from traitsync.definitions import Definitions, ir
from traitsync.identity.cache import graph_generation
from traitsync.log.event_log import Checkpoints
from traitsync.spec.event import StoredEvent
from traitsync.store.database import Connection, Database, OwnedConnection
from traitsync.store.migrate import migrate
from traitsync.workers import wake_all

IDENTITY_CONSUMER = "identity"
#: Types whose equality is exactly "same JSON" (floats are not: 0.0 == -0.0), so a change check
#: can skip serialising both sides.
_PLAIN: frozenset[type] = frozenset({int, str, bool, type(None)})
_NO_TRAITS: dict[str, Any] = {}  # shared, never written: definitions that read no trait
Progress = Callable[[int, int], None]
#: Chunks after which the objects frozen at the end of each chunk are thawed (see ``_transaction``).
THAW_EVERY = 64


_Profile = ProfileState


@dataclass
class _Plan:
    """What one event name does: which record it makes and which computations it feeds."""

    props: frozenset[str]
    context: bool
    #: Computations evaluated over records (the record is kept once for all of them if any admits it).
    slow: list[Compiled]
    slow_keys: set[str]
    #: Running aggregates reading the name.
    fast: list[Compiled]
    #: How far back (ms) a record of this name can matter to some reader (None: unbounded).
    horizon: int | None = None
    #: The record-reading computations with how far back a record can change their value
    #: (None: always, e.g. unbounded history or relative dates).
    reach: list[tuple[str, int | None]] = field(default_factory=list)


class RealtimeEngine(OwnedConnection):
    """Incremental, exact evaluation of every definition for every profile, including exits in time."""

    def __init__(self, db: Database, definitions: Definitions, *, clock: Callable[[], float] = time.time,
                 cache_profiles: int = 50_000, chunk_size: int = 1000, progress: Progress | None = None,
                 partition: Partition | None = None, connect: Callable[[], Connection] | None = None) -> None:
        """``partition``: the profiles this engine owns (default: all). ``connect``: a connection
        owned by someone else (the partition holder, whose session holds the partition's lock)."""
        migrate(db)
        self.db = db
        self.definitions = definitions
        self.clock = clock
        self.cache_profiles = cache_profiles
        self.chunk_size = chunk_size
        self.progress = progress
        self.partition = partition or Partition()
        self._connect = connect
        # Account-level definitions bring hidden member audiences (user level) for their ANY/ALL
        # clauses; account keys read only account-level keys on the account (see accounts.py).
        # A partitioned engine cannot follow accounts (the registry marks their definitions Failed).
        follow = (partition or Partition()).whole
        self._member_defs = {m.key: m for m in accounts.member_audiences(definitions)} if follow else {}
        self._account_keys = frozenset(k for k in definitions.order
                                       if follow and accounts.is_account(definitions[k]))
        full = definitions if not self._member_defs else Definitions(
            [*definitions.values(), *self._member_defs.values()], journeys=definitions.journeys.values())
        self._full = full
        self.order = tuple(full.order)
        known = set(definitions)
        self._deps = {k: accounts.outer_dependencies(definitions[k], known) if k in self._account_keys
                      else full.dependencies(k) for k in self.order}
        #: Per account key: its ANY/ALL clauses as (traits entry, quantifier, member audience).
        self._clauses: dict[str, list[tuple[str, str, str]]] = {
            k: [(accounts.clause_key(q), q.quantifier, accounts.member_key(q))
                for q in accounts.quantified(definitions[k])] for k in self._account_keys}
        #: Per member audience: the account keys whose clauses read it.
        self._member_readers: dict[str, set[str]] = {}
        for k, clauses in self._clauses.items():
            for _, _, mk in clauses:
                self._member_readers.setdefault(mk, set()).add(k)
        self._acct_by_trait: dict[str, list[str]] = {}
        for k in sorted(self._account_keys):
            for trait in accounts.outer_dependencies(definitions[k]) - known:
                self._acct_by_trait.setdefault(trait, []).append(k)
        self._closure = {k: self._transitive(k) for k in self.order}
        self._rank = {k: i for i, k in enumerate(self.order)}
        #: Every computation that reads ``key``, directly or through others (re-evaluated if it changes).
        self._readers: dict[str, set[str]] = {k: {r for r in self.order if k in self._closure[r]} for k in self.order}
        self._by_event: dict[str, list[str]] = {}
        self._by_trait: dict[str, list[str]] = {}
        for key in self.order:
            defn = full[key]
            for name in defn.events_read():
                self._by_event.setdefault(name, []).append(key)
            if key in self._account_keys:
                continue
            for trait in defn.traits_read():
                if trait not in definitions:
                    self._by_trait.setdefault(trait, []).append(key)
        self._custom_traits = {k for k in self.order if any(t not in definitions for t in full[k].traits_read())}
        self.compiled: dict[str, Compiled] = {}
        self.failed: set[str] = set()
        self._plans: dict[str, _Plan] = {}
        #: Per event name, what an account's record of it keeps and which account keys read it.
        self._acct_plans: dict[str, _Plan] = {}
        self._acct_names: set[str] = set()
        #: Accounts touched in this round (evaluated after the users, whose member audiences they read).
        self._acct_pending: dict[str, tuple[dict[str, int], str]] = {}
        #: Member audience flips not yet applied to the accounts: (user, its state, key, value, offset).
        self._flips: list[tuple[str, _Profile, str, bool, int]] = []
        self._horizons: dict[str, int | None] = {}
        self._record_names: set[str] = set()
        self._orders: dict[frozenset[str], tuple[list[tuple[str, bool]], tuple[str, ...]]] = {}
        self._cache: OrderedDict[str, _Profile] = OrderedDict()
        self._generation: int | None = None
        #: Per profile: the touched computations with the offset of the last input touching each, and
        #: the cause (the last item touching the profile).
        self._pending: dict[str, tuple[dict[str, int], str]] = {}
        self._by_id_type: dict[str, set[str]] = {}
        self._conn: Connection | None = None
        self._prepared = False
        self._live = False
        self._wake = threading.Event()
        self._chunks_frozen = 0
        #: Test hook: called inside each transaction after the writes, before the commit.
        self.before_commit: Callable[[], None] | None = None

    def _transitive(self, key: str) -> set[str]:
        out: set[str] = set()
        todo = list(self._deps[key])
        while todo:
            d = todo.pop()
            if d not in out:
                out.add(d)
                todo.extend(self._deps[d])
        return out

    # -- plumbing ----------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)


    @property
    def live(self) -> bool:
        """Caught up with identity at the end of the last round (and the definitions marked Live)."""
        return self._live

    def connection(self) -> Connection:
        return self._connect() if self._connect is not None else super().connection()

    def close(self) -> None:
        if self._connect is None:  # a borrowed connection is closed by its owner
            super().close()

    def wake(self) -> None:
        """Tell a sleeping ``run_forever`` that there is new work."""
        self._wake.set()

    def _transaction(self, work: Callable[[Connection, Output], int]) -> int:
        """Run ``work`` and write its output in one transaction.

        The cyclic garbage collector is paused for the chunk: a chunk allocates ~100k small
        containers (records, states) that all live on in the cache, and collections triggered by
        them re-scanned the young heap over and over (~20% of the engine's CPU). Nothing the
        engine builds is cyclic, so reference counting frees it; collection resumes after.

        What the chunk built is then frozen (``gc.freeze``: moved out of the collector's
        generations), because most of it lives on in the cache and the young and middle
        collections that followed each chunk re-scanned it (~5% of the CPU at 100k events).
        Every ``THAW_EVERY`` chunks everything is thawed back into the oldest generation, so any
        cyclic garbage frozen with it (the process's, not the engine's) is still collected.
        """
        conn = self.connection()
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            with conn.transaction():
                generation = graph_generation(conn)
                if generation != self._generation:
                    # The graph was edited outside identity's stream (a privacy deletion, an
                    # identifier deleted by the Profile API): cached profiles may be stale.
                    self._cache.clear()
                    self._generation = generation
                out = Output()
                n = work(conn, out)
                out.flush(conn)
                if out.moved and not self.partition.whole:
                    publish_progress(conn, self.partition.count)
                if self.before_commit is not None:
                    self.before_commit()
            return n
        except BaseException:
            self._cache.clear()  # memory may be ahead of what was rolled back
            self._pending.clear()
            self._acct_pending.clear()
            self._flips.clear()
            raise
        finally:
            if paused:
                self._chunks_frozen += 1
                if self._chunks_frozen >= THAW_EVERY:
                    gc.unfreeze()
                    self._chunks_frozen = 0
                else:
                    gc.freeze()
                gc.enable()

    def prepare(self) -> None:
        """Register definitions, backfill new or changed ones (resumably) before streaming."""
        if self._prepared:
            return
        conn = self.connection()
        if self.partition.whole and self._connect is None and conn.dialect == "postgresql":
            # A lone engine on a store that partition workers run on would process their events twice.
            if Ownership.any_alive(conn):
                raise PartitionLayoutError("engine workers are running on this store: stop them first, "
                                           "or let them do the work")
            with conn.transaction():  # a partitioned store must have drained into one first
                if stored_layout(conn) != 1:
                    ensure_layout(conn, 1)
        registry = Registry(self.db, self.definitions, conn, self.now_ms(), self.partition)
        self.compiled, self.failed = registry.sync()
        for key, defn in self._member_defs.items():
            readers = self._member_readers[key]
            if readers <= self.failed:
                self.failed.add(key)  # nothing reads it (its accounts' definitions could not run)
            self.compiled[key] = Compiled(defn, 0, internal=True)
        self._make_plans()
        backfill = registry.pending_backfill()
        if backfill:
            self._backfill(registry, backfill)
        self._prepared = True

    def _make_plans(self) -> None:
        """Per event name: the record shape (union of what its readers look at) and its readers.

        Horizons (how long a name's records matter) include failed definitions, so a definition
        that fails and is fixed later has not lost the records it needs.
        """
        self._plans = {}
        self._acct_plans = {}
        horizons: dict[str, int | None] = {}
        for key in self.order:
            comp = self.compiled.get(key)
            if comp is None:
                continue
            plans = self._acct_plans if comp.account else self._plans
            for name in comp.events:
                if not comp.fast:
                    # One horizon per name for users and accounts alike: a user only keeps a few
                    # more records than its own definitions need.
                    old = horizons.get(name, 0)
                    horizons[name] = None if old is None or comp.horizon is None else max(old, comp.horizon)
                if key in self.failed:
                    continue
                plan = plans.get(name)
                if plan is None:
                    plan = plans[name] = _Plan(frozenset(), False, [], set(), [])
                plan.props |= comp.props
                plan.context = plan.context or comp.context
                if comp.fast:
                    plan.fast.append(comp)
                else:
                    plan.slow.append(comp)
                    plan.slow_keys.add(key)
                    plan.reach.append((key, None if comp.relative else comp.horizon))
        self._horizons = horizons
        self._acct_names = set(self._acct_plans)
        self._record_names = {n for n in horizons if n not in self._acct_names or n in self._plans}
        for name, plan in [*self._plans.items(), *self._acct_plans.items()]:
            plan.horizon = horizons.get(name, 0)

    # -- the stream --------------------------------------------------------------------------------
    def run_once(self, max_items: int | None = None) -> int:
        """Process one chunk of resolved events and changes; returns how many items were consumed."""
        self.prepare()
        limit = max_items or self.chunk_size
        return self._transaction(lambda conn, out: self._chunk(conn, out, limit))

    def _chunk(self, conn: Connection, out: Output, limit: int) -> int:
        part = self.partition
        identity = Checkpoints.get(conn, IDENTITY_CONSUMER)
        after = Checkpoints.get(conn, part.events_consumer)
        changes_after = Checkpoints.get(conn, part.changes_consumer)
        events = read_events(conn, after, identity, limit, part.where("pe.profile_id"))
        upto = events[-1][0] if len(events) >= limit else identity
        # Account changes (links, account traits) only matter to account-level definitions.
        collections = "collection IN ('users', 'accounts')" if self._account_keys else "collection = 'users'"
        changes = conn.fetchall(
            'SELECT "offset", kind, profile_id, other_profile_id, id_type, trait_keys, event_offset, message_id, '
            f'collection FROM profile_changes WHERE "offset" > ? AND {collections} AND (event_offset IS NULL OR '
            'event_offset <= ?)' + part.where_change() + ' ORDER BY "offset"', (changes_after, upto))
        last_change = max((int(c[0]) for c in changes), default=changes_after)
        all_changes = conn.scalar('SELECT MAX("offset") FROM profile_changes WHERE "offset" > ? AND '
                                  '(event_offset IS NULL OR event_offset <= ?)', (changes_after, upto))
        if all_changes is not None:
            last_change = max(last_change, int(all_changes))  # skip account changes too
        if upto <= after and last_change == changes_after:
            if not self._live:
                serialise_writers(conn)
                conn.execute("UPDATE computations SET status = 'Live' WHERE status = 'Computing'")
                self._live = True
            return 0
        now = self.now_ms()
        items: list[tuple[tuple[int, int, int], Any]] = []
        for c in changes:
            pos = after if c[6] is None else int(c[6])
            items.append(((pos, 0, int(c[0])), c))
        for offset, resolved in events:
            if resolved is not None and resolved.event.event in self._by_event:
                items.append(((offset, 1, 0), resolved))
        items.sort(key=lambda i: i[0])
        pids = {r.profile_id for _, r in events if r is not None}
        pids.update(str(c[2]) for c in changes if part.owns(str(c[2])))
        self._preload(conn, sorted(pids))
        self._pending.clear()
        accounts_read = bool(self._acct_plans)
        for (pos, kind, _), item in items:
            if kind == 1:
                self._on_event(conn, item.profile_id, item.event, pos, now, out)
                if accounts_read:
                    self._on_account_event(conn, item.profile_id, item.event, pos, now, out)
            else:
                self._on_change(conn, item, pos, now, out)
        self._flush_pending(conn, now, out)
        self._flush_accounts(conn, now, out)
        Checkpoints.set(conn, part.events_consumer, max(upto, after))
        Checkpoints.set(conn, part.changes_consumer, last_change)
        out.moved = True
        if self._live and len(events) >= limit:
            self._live = False
        return len(events) + len(changes)

    def _on_event(self, conn: Connection, pid: str, event: StoredEvent, pos: int, now: int, out: Output) -> None:
        """Fold one event: its record is kept once for the record-reading computations, and folded
        into each running aggregate; only computations whose input changed are marked."""
        plan = self._plans.get(event.event or "")
        if plan is None:
            return
        prof = self._profile(conn, pid)
        rec = make_record(event, event.properties, plan.props, plan.context)
        touched: set[str] = set()
        t, received = rec[0], rec[2]
        # A record older than every reader's window can reach is never seen (it would be pruned at
        # once), and one older than a reader's own reach cannot change that reader's value, now or
        # later: the reader is not marked (its due time cannot move either).
        horizon = plan.horizon
        admitted = bool(plan.slow) and any(c.in_history(t, received) for c in plan.slow)
        if admitted and (horizon is None or t > now - horizon):
            prof.insert(rec[4], rec)
            out.profiles[pid] = prof
            for key, reach in plan.reach:
                if reach is None or t > now - reach:
                    touched.add(key)
        states = prof.states
        for comp in plan.fast:
            st = states.get(comp.key)
            if st is None:
                st = State()
                if comp.fold_fast(st, rec, now):
                    states[comp.key] = st
                    touched.add(comp.key)
            elif comp.fold_fast(st, rec, now):
                touched.add(comp.key)
        if touched:
            out.profiles[pid] = prof
        if touched or admitted:  # an admitted record is still the profile's latest cause
            self._mark(pid, touched, event.message_id, pos)

    def _on_change(self, conn: Connection, change: tuple[Any, ...], pos: int, now: int, out: Output) -> None:
        _, kind, pid, other, id_type, trait_keys, event_offset, message_id, collection = change
        if collection == "accounts":
            self._on_account_change(conn, change, pos, now, out)
            return
        if kind == "merged":
            self._flush_pending(conn, now, out, tuple(p for p in (str(pid), str(other)) if self.partition.owns(p)))
            self._merge(conn, str(pid), str(other), int(event_offset) if event_offset is not None else pos,
                        now, out)
            return
        if not self.partition.owns(str(pid)):
            return
        prof = self._profile(conn, str(pid))
        if kind == "traits_changed":
            keys = orjson.loads(trait_keys) if trait_keys else []
            prof.traits = None
            touched = {k for t in keys for k in self._by_trait.get(t, ())}
            if touched:
                self._mark(str(pid), touched, f"trait:{sorted(keys)[0]}", pos)
            return
        if kind in ("identifier_added", "identifier_removed"):
            prof.ids = None
            prof.eligible.clear()
            using = self._by_id_type.get(str(id_type))
            if using is None:
                using = self._by_id_type[str(id_type)] = {k for k, c in self.compiled.items()
                                                          if id_type in c.eligible and not c.account}
            if using:
                self._mark(str(pid), using, message_id or "identifier", pos)

    def _mark(self, pid: str, keys: set[str], cause: str, pos: int) -> None:
        """Defer evaluation to the end of the chunk (or the next merge touching the profile).

        All of a chunk is evaluated at the same ``now``, so folding a profile's events first and
        evaluating each touched computation once gives the same values as one evaluation per
        event, at a fraction of the cost; only intermediate values inside one chunk are not
        emitted. The cause is the last item that touched the profile; each computation remembers
        the offset of the last input that touched it, which becomes the version of a change (so
        versions, and the messageIds built from them, do not depend on chunking).
        """
        entry = self._pending.get(pid)
        if entry is None:
            self._pending[pid] = (dict.fromkeys(keys, pos), cause)
        else:
            touched = entry[0]
            for key in keys:
                touched[key] = pos
            self._pending[pid] = (touched, cause)

    def _flush_pending(self, conn: Connection, now: int, out: Output, only: tuple[str, ...] | None = None) -> None:
        pids = list(self._pending) if only is None else [p for p in only if p in self._pending]
        self._reload_context(conn, pids)
        for pid in pids:
            keys, cause = self._pending.pop(pid)
            self._touch(conn, pid, self._profile(conn, pid), keys, cause, now, out)

    # -- accounts ----------------------------------------------------------------------------------
    def _on_account_event(self, conn: Connection, pid: str, event: StoredEvent, pos: int, now: int,
                          out: Output) -> None:
        """A user's event counts toward every account the user is linked to (as the stream has it)."""
        plan = self._acct_plans.get(event.event or "")
        if plan is None:
            return
        prof = self._profile(conn, pid)
        if not prof.links:
            return
        rec = make_record(event, event.properties, plan.props, plan.context)
        t, received = rec[0], rec[2]
        horizon = plan.horizon
        if not any(c.in_history(t, received) for c in plan.slow) or (horizon is not None and t <= now - horizon):
            return
        touched = {key for key, reach in plan.reach if reach is None or t > now - reach}
        for acc in sorted(prof.links):
            aprof = self._profile(conn, acc)
            aprof.insert(rec[4], rec)
            out.profiles[acc] = aprof
            if touched:
                self._mark_account(acc, touched, event.message_id, pos)

    def _on_account_change(self, conn: Connection, change: tuple[Any, ...], pos: int, now: int,
                           out: Output) -> None:
        _, kind, pid, other, _, trait_keys, _, message_id, _ = change
        acc = str(pid)
        if kind == "unlinked" and other is None:
            self._resync_links(conn, acc, pos, out)
            return
        if kind in ("linked", "unlinked"):
            self._on_link(conn, acc, str(other), kind == "linked", pos, now, out, message_id or kind)
            return
        prof = self._profile(conn, acc)
        if kind == "traits_changed":
            keys = orjson.loads(trait_keys) if trait_keys else []
            prof.traits = None
            touched = {k for t in keys for k in self._acct_by_trait.get(t, ())}
            if touched:
                self._mark_account(acc, touched, f"trait:{sorted(keys)[0]}", pos)
        elif kind in ("identifier_added", "identifier_removed"):
            prof.ids = None
            prof.eligible.clear()
            self._mark_account(acc, set(self._account_keys), message_id or "identifier", pos)

    def _on_link(self, conn: Connection, acc: str, user: str, added: bool, pos: int, now: int, out: Output,
                 cause: str) -> None:
        """A link added or ended: the account's members, their member audiences and its events change."""
        uprof = self._profile(conn, user)
        aprof = self._profile(conn, acc)
        if added == (user in aprof.links and acc in uprof.links):
            return  # already as the stream says (a backfill read the links after this change was made)
        if added:
            uprof.links.add(acc)
            aprof.links.add(user)
            self._join_members(conn, user, uprof, aprof, pos)
        else:
            uprof.links.discard(acc)
            aprof.links.discard(user)
            for members in aprof.members_in.values():
                members.discard(user)
        out.profiles[user] = uprof
        if added:  # the new user's events join the account's (its others are already there)
            self._add_history(conn, aprof, members_as_of(conn, user, pos), pos - 1)
            out.profiles[acc] = aprof
        else:
            self._rebuild_account(conn, acc, aprof, pos, pos - 1, out)
        self._mark_account(acc, set(self._account_keys), cause, pos)

    def _resync_links(self, conn: Connection, acc: str, pos: int, out: Output) -> None:
        """Users deleted from the store (a privacy deletion) leave the account: its users are those
        the store still links (users linked later arrive with their own ``linked`` change)."""
        aprof = self._profile(conn, acc)
        gone = aprof.links - set(members_of(conn, acc))
        if not gone:
            return
        aprof.links -= gone
        for members in aprof.members_in.values():
            members -= gone
        for user in gone:
            self._cache.pop(user, None)
        self._rebuild_account(conn, acc, aprof, pos, pos, out)
        self._mark_account(acc, set(self._account_keys), "deletion", pos)

    def _join_members(self, conn: Connection, user: str, uprof: _Profile, aprof: _Profile, pos: int) -> None:
        """Put a (newly linked or merged) user in the account's member audiences it is in; a member
        audience never evaluated for the user is evaluated this round (its flip then lands here)."""
        missing: set[str] = set()
        for mk in self._member_defs:
            st = uprof.states.get(mk)
            if st is None:
                missing.add(mk)
            members = aprof.members_in.setdefault(mk, set())
            if st is not None and st.value:
                members.add(user)
            else:
                members.discard(user)
        missing -= self.failed
        if missing:
            self._mark(user, missing, "link", pos)

    def _rebuild_account(self, conn: Connection, acc: str, aprof: _Profile, members_upto: int, upto: int,
                         out: Output) -> None:
        """The account's records from the stored events of its members (and what merged into them)."""
        pids: list[str] = []
        for user in sorted(aprof.links):
            pids.extend(members_as_of(conn, user, members_upto))
        aprof.records = {}
        aprof.min_received = None
        aprof.latest = None
        self._add_history(conn, aprof, pids, upto)
        out.profiles[acc] = aprof

    def _add_history(self, conn: Connection, aprof: _Profile, pids: list[str], upto: int) -> None:
        """The stored events of ``pids`` (up to offset ``upto``) that account definitions read."""
        for e in profile_history(conn, pids, self._acct_names, upto):
            plan = self._acct_plans.get(e.event or "")
            if plan is not None and any(c.in_history(e.timestamp_ms, e.received_at_ms) for c in plan.slow):
                rec = make_record(e, e.properties, plan.props, plan.context)
                aprof.insert(rec[4], rec)

    def _mark_account(self, acc: str, keys: set[str], cause: str, pos: int) -> None:
        entry = self._acct_pending.get(acc)
        if entry is None:
            self._acct_pending[acc] = (dict.fromkeys(keys, pos), cause)
        else:
            for key in keys:
                entry[0][key] = pos
            self._acct_pending[acc] = (entry[0], cause)

    def _apply_flips(self, conn: Connection, out: Output) -> None:
        """A member audience changed for some users: update their accounts' member sets."""
        flips, self._flips = self._flips, []
        for user, uprof, key, value, pos in flips:
            readers = self._member_readers.get(key)
            if not readers:
                continue
            for acc in sorted(uprof.links):
                aprof = self._profile(conn, acc)
                members = aprof.members_in.setdefault(key, set())
                if value:
                    members.add(user)
                else:
                    members.discard(user)
                out.profiles[acc] = aprof
                self._mark_account(acc, readers, f"member:{user}", pos)

    def _flush_accounts(self, conn: Connection, now: int, out: Output) -> None:
        if self._flips:
            self._apply_flips(conn, out)
        while self._acct_pending:
            pids = sorted(self._acct_pending)
            self._reload_context(conn, pids)
            for acc in pids:
                keys, cause = self._acct_pending.pop(acc)
                self._touch(conn, acc, self._profile(conn, acc), keys, cause, now, out)

    def _clause_answers(self, prof: _Profile, key: str, base: dict[str, Any]) -> None:
        """An account's ANY / ALL answers, from its members in each member audience."""
        for entry, quantifier, mk in self._clauses[key]:
            inside = prof.members_in.get(mk)
            n = 0 if not inside else len(inside & prof.links)
            base[entry] = n > 0 if quantifier == "any" else bool(prof.links) and n == len(prof.links)

    def _merge_links(self, conn: Connection, survivor: str, absorbed: str, out: Output) -> list[str]:
        """The absorbed user's accounts become the survivor's (as identity moves the links)."""
        gone = self._profile(conn, absorbed)
        moved = sorted(gone.links)
        if not moved:
            return []
        sprof = self._profile(conn, survivor)
        for acc in moved:
            aprof = self._profile(conn, acc)
            aprof.links.discard(absorbed)
            aprof.links.add(survivor)
            for members in aprof.members_in.values():
                members.discard(absorbed)
            sprof.links.add(acc)
            out.profiles[acc] = aprof
        gone.links = set()
        out.profiles[survivor] = sprof
        return moved

    def _merge(self, conn: Connection, survivor: str, absorbed: str, offset: int, now: int, out: Output) -> None:
        """The absorbed profile's values end (exits); the survivor is rebuilt from the union of events.

        Each half is done by the partition owning that profile (both, for the whole store), at the
        merge's place among that partition's own events; neither needs the other's state, since
        the survivor is rebuilt from the stored history of every member.
        """
        moved = self._merge_links(conn, survivor, absorbed, out) if self._account_keys else []
        if self.partition.owns(absorbed):
            gone = self._profile(conn, absorbed)
            for key, st in gone.states.items():
                comp = self.compiled.get(key)
                if comp is not None:
                    self._set_value(absorbed, comp, st, False if comp.audience else None, "merge", now, out, offset)
                out.values[(absorbed, key)] = None
            out.profiles[absorbed] = None
            self._cache.pop(absorbed, None)
        if not self.partition.owns(survivor):
            return
        prof = self._profile(conn, survivor)
        prof.traits = prof.ids = None
        prof.eligible.clear()
        members = members_as_of(conn, survivor, offset)
        keys = set(self.compiled) - self.failed - self._account_keys
        self._rebuild(conn, survivor, prof, members, keys, offset - 1, now, out)
        self._touch(conn, survivor, prof, dict.fromkeys(keys, offset), "merge", now, out)
        if self._account_keys and prof.links:
            # The survivor's accounts now count the absorbed user's events (and, for the accounts
            # it brought, the survivor's): rebuild them as of the merge.
            for acc in sorted(prof.links):
                aprof = self._profile(conn, acc)
                self._join_members(conn, survivor, prof, aprof, offset)
                self._rebuild_account(conn, acc, aprof, offset, offset - 1, out)
                self._mark_account(acc, set(self._account_keys), "merge" if acc not in moved else "merge:link",
                                   offset)

    def _rebuild(self, conn: Connection, pid: str, prof: _Profile, members: list[str], keys: set[str],
                 upto: int, now: int, out: Output) -> None:
        """Fresh records and aggregates for ``keys`` from the stored history (values, versions and due
        times carry over). Records are shared, so any record-reading key rebuilds all of them."""
        slow = any(not self.compiled[k].fast for k in keys)
        fast = {k: self.compiled[k] for k in keys if self.compiled[k].fast}
        names = set(self._record_names) if slow else set()
        for comp in fast.values():
            names |= comp.events
        history = profile_history(conn, members, names, upto)
        if slow:
            prof.records = {}
            prof.min_received = None
        fresh: dict[str, State] = {}
        for key in fast:
            old = prof.states.get(key) or State()
            fresh[key] = State(old.value, old.version, due=old.due)
        for e in history:
            plan = self._plans.get(e.event or "")
            if plan is None:
                continue
            rec = make_record(e, e.properties, plan.props, plan.context)
            if slow and plan.slow and any(c.in_history(rec[0], rec[2]) for c in plan.slow):
                prof.insert(rec[4], rec)
            for comp in plan.fast:
                st = fresh.get(comp.key)
                if st is not None:
                    comp.fold_fast(st, rec, now)
        prof.states.update(fresh)
        out.profiles[pid] = prof

    # -- evaluation --------------------------------------------------------------------------------
    def _touch(self, conn: Connection, pid: str, prof: _Profile, keys: Mapping[str, int], cause: str, now: int,
               out: Output) -> set[str]:
        """Re-evaluate ``keys`` and, in dependency order, whatever reads a value that changed.

        ``keys`` maps each touched computation to the offset of the last input that touched it: a
        change's version is the largest of those offsets among what it was computed from (the
        key itself, and the dependencies that changed), or the previous version + 1 if larger
        (timers). It never depends on how the input was chunked.
        """
        states = prof.states
        if prof.prune(self._horizons, now):
            out.profiles[pid] = prof
        sig = frozenset(keys)
        order = self._orders.get(sig)
        if order is None:
            order = self._orders[sig] = self._order_for(sig)
        steps, deps_to_check = order
        if not all(d in states for d in deps_to_check):
            steps = self._order_for(sig, states)[0]  # a dependency never evaluated: evaluate it first
        changed: dict[str, int] = {}
        top = max(keys.values(), default=0)
        compiled, failed, deps, eligibility = self.compiled, self.failed, self._deps, prof.eligible
        for key, direct in steps:
            if key in failed or (not direct and deps[key].isdisjoint(changed)):
                continue
            pos = keys.get(key, -1)
            if changed:
                for d in deps[key]:
                    if d in changed and changed[d] > pos:
                        pos = changed[d]
            if pos < 0:
                pos = top
            comp = compiled[key]
            try:
                st = states.get(key)
                if st is None:
                    st = states[key] = State()
                traits = self._traits_for(conn, pid, prof, key) if comp.reads_traits else _NO_TRAITS
                eligible = eligibility.get(comp.eligible)
                if eligible is None:
                    eligible = eligibility[comp.eligible] = comp.eligible_with(self._ids(conn, pid, prof))
                value, due = comp.evaluate(st, prof, traits, eligible, now)
                moved = self._set_value(pid, comp, st, value, cause, now, out, pos)
                if moved or due != st.due:  # otherwise the state is as stored: not rewritten
                    st.due = due
                    out.profiles[pid] = prof
                if moved:
                    changed[key] = pos
            except Exception as exc:  # one broken definition must not stop the others
                failed.add(key)
                self._make_plans()
                serialise_writers(conn)
                conn.execute("UPDATE computations SET status = 'Failed', error = ? WHERE key = ?",
                             (f"{type(exc).__name__}: {exc}", key))
        return set(changed)

    def _order_for(self, keys: frozenset[str], states: Mapping[str, State] | None = None
                   ) -> tuple[list[tuple[str, bool]], tuple[str, ...]]:
        """The evaluation order for a touched set: (key, evaluated unconditionally) in rank order,
        readers evaluated only if a dependency changed; and the dependencies that must already
        have been evaluated for this order to hold (with ``states``, those that are not are added).

        Cached per touched set (an event name touches the same set every time), since computing
        it was a visible share of each profile's evaluation.
        """
        needed = set(keys)
        deps: set[str] = set()
        for key in keys:
            deps |= self._closure[key]
        deps -= keys
        if states is not None:
            needed |= {d for d in deps if d not in states}
        candidates = set(needed)
        for key in needed:
            candidates |= self._readers[key]
        steps = [(k, k in needed) for k in sorted(candidates, key=self._rank.__getitem__) if k in self.compiled]
        return steps, tuple(sorted(deps))

    def _set_value(self, pid: str, comp: Compiled, st: State, value: Any, cause: str, now: int,
                   out: Output, pos: int) -> bool:
        audience = comp.audience
        old = st.value
        if audience:
            if bool(old) == bool(value):
                return False
            if comp.internal:  # a member audience: its accounts are told, nothing is published
                st.value = value
                st.version += 1
                self._flips.append((pid, self._cache[pid], comp.key, bool(value), pos))
                return True
        elif type(old) is type(value) and type(value) in _PLAIN:
            if old == value:
                return False
        elif dumps(old) == dumps(value):
            return False
        version = st.version + 1
        if pos > version:
            version = pos
        st.version = version
        st.value = value
        wall = int(time.time() * 1000)
        text = dumps(value)
        out.results.append((comp.key, comp.id, comp.computation_class, pid, dumps(old), text,
                            version, now, cause[:120], wall))
        out.values[(pid, comp.key)] = (text, version, wall)
        delta = (1 if value else -1) if audience else int(value is not None) - int(old is not None)
        if delta:
            out.size_delta[comp.key] = out.size_delta.get(comp.key, 0) + delta
        out.last_change[comp.key] = wall
        return True

    def _traits_for(self, conn: Connection, pid: str, prof: _Profile, key: str) -> dict[str, Any]:
        comp = self.compiled[key]
        if not comp.reads_traits:
            return _NO_TRAITS
        base: dict[str, Any] = {}
        if key in self._custom_traits or comp.relative:
            if prof.traits is None:
                prof.traits = load_traits(conn, [pid])[pid]
            base = dict(prof.traits)
        for dep in self._deps[key]:
            st = prof.states.get(dep)
            value = None if st is None else st.value
            base[dep] = bool(value) if isinstance(self._full[dep], ir.Audience) else value
        if comp.account:
            self._clause_answers(prof, key, base)
        return base

    def _ids(self, conn: Connection, pid: str, prof: _Profile) -> dict[str, list[str]]:
        if prof.ids is None:
            prof.ids = load_identifiers(conn, [pid])[pid]
        return prof.ids

    # -- cache -------------------------------------------------------------------------------------
    def _preload(self, conn: Connection, pids: list[str]) -> None:
        missing = [p for p in pids if p not in self._cache]
        if not missing:
            return
        states = load_states(conn, missing)
        ids = load_identifiers(conn, missing)
        traits = load_traits(conn, missing) if self._custom_traits else {}
        for pid in missing:
            prof = states[pid]
            prof.ids = ids[pid]
            prof.traits = traits.get(pid)
            self._remember(pid, prof)

    def _reload_context(self, conn: Connection, pids: list[str]) -> None:
        """Identifiers and traits that changed since loading, for many profiles in one query each
        (one query per profile was a round trip per identify call)."""
        profs = [(pid, self._cache.get(pid)) for pid in pids]
        no_ids = [pid for pid, p in profs if p is not None and p.ids is None]
        if no_ids:
            for pid, ids in load_identifiers(conn, no_ids).items():
                self._cache[pid].ids = ids
        if self._custom_traits:
            no_traits = [pid for pid, p in profs if p is not None and p.traits is None]
            if no_traits:
                for pid, traits in load_traits(conn, no_traits).items():
                    self._cache[pid].traits = traits

    def _profile(self, conn: Connection, pid: str) -> _Profile:
        prof = self._cache.get(pid)
        if prof is None:
            self._preload(conn, [pid])
            prof = self._cache[pid]
        else:
            self._cache.move_to_end(pid)
        return prof

    def _remember(self, pid: str, prof: _Profile) -> None:
        self._cache[pid] = prof
        while len(self._cache) > self.cache_profiles:
            self._cache.popitem(last=False)

    # -- time --------------------------------------------------------------------------------------
    def fire_due(self, now_ms: int | None = None, batch: int = 2000) -> int:
        """Re-evaluate every (profile, computation) whose due time has come; returns how many fired."""
        self.prepare()
        now = self.now_ms() if now_ms is None else now_ms
        total = 0
        while True:
            n = self._transaction(lambda conn, out: self._fire(conn, out, now, batch))
            total += n
            if n < batch:
                return total

    def _fire(self, conn: Connection, out: Output, now: int, batch: int) -> int:
        rows = conn.fetchall("SELECT profile_id, due_at_ms FROM compute_profile_due WHERE due_at_ms <= ?"
                             + self.partition.where("profile_id") + " ORDER BY due_at_ms LIMIT ?", (now, batch))
        pids = [str(r[0]) for r in rows]
        self._preload(conn, sorted(pids))
        self._reload_context(conn, pids)
        for (_, due_at), pid in zip(rows, pids, strict=True):
            prof = self._profile(conn, pid)
            prof.stored_due = int(due_at)  # what the store holds: the row is rewritten whatever happens
            out.profiles[pid] = prof
            due = {k for k, st in prof.states.items() if st.due is not None and st.due <= now}
            live = {k for k in due if k in self.compiled and k not in self.failed}
            if live:
                self._touch(conn, pid, prof, dict.fromkeys(live, 0), "timer", now, out)
            for k in due:  # a due time at or before now must not fire again
                st = prof.states[k]
                if st.due is not None and st.due <= now:
                    st.due = None
        self._flush_pending(conn, now, out)  # users a member audience's flip marked
        self._flush_accounts(conn, now, out)
        return len(rows)

    def next_due_ms(self) -> int | None:
        conn = self.connection()
        value = conn.scalar("SELECT MIN(due_at_ms) FROM compute_profile_due WHERE 1 = 1"
                            + self.partition.where("profile_id"))
        conn.commit()
        return None if value is None else int(value)

    def run_forever(self, stop_event: threading.Event, poll_seconds: float = 0.1) -> None:
        """Consume the streams and fire due times until ``stop_event``; sleeps until the next due time.

        New events are noticed within ``poll_seconds`` (or at once after :meth:`wake`).
        """
        try:
            while not stop_event.is_set():
                n = self.run_once()
                fired = self.fire_due(self.now_ms())
                if n or fired:
                    wake_all(self.downstream)
                    continue
                wait = poll_seconds
                nxt = self.next_due_ms()
                if nxt is not None:
                    wait = min(wait, max(0.0, (nxt - self.now_ms()) / 1000))
                self._wake.wait(wait)
                self._wake.clear()
        finally:
            self.close()

    name = "engine"
    poll_interval = 0.05
    #: Called after a round with output (``build_stages`` wires activation's ``wake``).
    downstream: Sequence[Callable[[], None]] = ()

    def run(self, stop: threading.Event) -> None:
        """The worker shape every stage shares (``traitsync.workers``)."""
        self.run_forever(stop, self.poll_interval)

    # -- backfill ----------------------------------------------------------------------------------
    def _backfill(self, registry: Registry, keys: set[str]) -> None:
        conn = self.connection()
        upto = Checkpoints.get(conn, self.partition.events_consumer)
        conn.commit()
        if registry.partition_done(keys):
            registry.finish_backfill(keys)
            return
        total = registry.canonical_count(upto)
        done = registry.backfill_done(keys, upto)
        cursor = registry.backfill_cursor(keys)
        acct = keys & self._account_keys
        ukeys = (keys - self._account_keys) | {mk for k in acct for _, _, mk in self._clauses[k]}
        ukeys -= self.failed
        while True:
            page = registry.canonical_page(upto, cursor, 200)
            if not page:
                break

            def work(conn: Connection, out: Output, page: list[str] = page) -> int:
                self._preload(conn, page)
                for pid in page:
                    prof = self._profile(conn, pid)
                    if acct:  # the links as of now; later link changes in the stream are idempotent
                        prof.links = set(accounts_of(conn, pid))
                        out.profiles[pid] = prof
                    if ukeys:
                        self._rebuild(conn, pid, prof, members_as_of(conn, pid, upto), ukeys, upto, self.now_ms(),
                                      out)
                        self._touch(conn, pid, prof, dict.fromkeys(ukeys, upto), "backfill", self.now_ms(), out)
                # Accounts are rebuilt whole below, from their members' values.
                self._flips.clear()
                self._acct_pending.clear()
                registry.save_cursor(conn, keys, page[-1])
                return len(page)

            done += self._transaction(work)
            cursor = page[-1]
            if self.progress is not None:
                self.progress(done, total)
        if acct:
            self._backfill_accounts(acct, upto)
        registry.finish_backfill(keys)

    def _backfill_accounts(self, keys: set[str], upto: int) -> None:
        """Every account: its members and their member audiences from the store, its records, ``keys``."""
        after = ""
        while True:
            conn = self.connection()
            page = account_page(conn, upto, after, 200)
            conn.commit()
            if not page:
                return

            def work(conn: Connection, out: Output, page: list[str] = page) -> int:
                now = self.now_ms()
                self._preload(conn, page)
                for acc in page:
                    aprof = self._profile(conn, acc)
                    aprof.links = set(members_of(conn, acc))
                    aprof.members_in = {}
                    for user in sorted(aprof.links):
                        uprof = self._profile(conn, user)
                        uprof.links.add(acc)
                        out.profiles[user] = uprof
                        self._join_members(conn, user, uprof, aprof, upto)
                    self._rebuild_account(conn, acc, aprof, upto, upto, out)
                    self._mark_account(acc, keys, "backfill", upto)
                self._flush_pending(conn, now, out)
                self._flush_accounts(conn, now, out)
                return len(page)

            self._transaction(work)
            after = page[-1]
