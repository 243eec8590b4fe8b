"""List destinations: on a schedule, upload audience membership diffs (segment-spec 5.8).

For each (list destination, audience) the scheduler keeps, in ``activation_list_members``, the
identifiers the vendor list is *confirmed* to hold, and in ``activation_lists`` whether the list
is confirmed created. A sync:

1. waits while the previous sync of that audience still has undelivered operations (a diff
   against membership that has not been confirmed yet would upload the same members twice);
2. holds a list not yet created while the audience is below the vendor's minimum size
   (Facebook, Google: 100), with the reason stored for the status views;
3. computes adds and removes in SQL (``list_members``): the selected identifiers of current
   members against the identifiers the list is confirmed to hold (removes go to every identifier
   the list holds that no member's selection includes, whatever ID Sync selected when it was
   added); the first sync creates the list (named after the audience) and adds every member;
4. streams them in the adapter's batch size and enqueues each batch as it comes, ordered per
   audience (create, removes, adds), in one transaction with the schedule update. Memory is one
   batch, whatever the audience's size.

Membership moves forward in ``state.confirm_list_operation`` when activation folds the delivery
receipt, so a dead batch is simply planned again at the next sync (under a new sync id, hence
new messageIds).

**Vendors that need the list id on every upload** (Facebook, Google: the adapter declares
``list_id_before_members``): the first sync sends ``create`` alone; once the vendor's answer
with the id is confirmed, the next tick (the schedule is not advanced) uploads every member with
``context.personas.external_audience_id``. **A list deleted on the vendor side** (an upload
dead-lettered with ``LIST_NOT_FOUND``) is forgotten: the next sync creates it again and uploads
every member, instead of failing forever.

Cadence: the destination's ``schedule.every`` (default hourly), never below the adapter's
floor; the first sync of a new audience runs at once; ``sync_now`` (``traitsync destinations
sync ID``) runs one regardless of the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from traitsync.activation.config import ActivationConfig, ActivationDestination, DestinationLink
from traitsync.activation.consent import consenting
from traitsync.activation.diff import ListMember
from traitsync.activation.list_members import count_members, strategies, stream_adds, stream_held, stream_removes
from traitsync.activation.payloads import list_message
from traitsync.activation.state import LIST_META, apply_receipts
from traitsync.activation.types import ComputationRef
from traitsync.delivery import receipts
from traitsync.delivery.outbox import Outbox, now_ms
from traitsync.destinations.base import LIST_GONE
from traitsync.store.database import Connection, Database
from traitsync.workers import PollingWorker

log = structlog.get_logger("traitsync.activation.lists")


def list_order_key(computation_id: str) -> str:
    """Every operation of one audience's list shares an order key, so they go out in order."""
    return f"list:{computation_id}"


@dataclass(frozen=True)
class ListSyncResult:
    destination_id: str
    computation_key: str
    created: bool = False
    adds: int = 0
    removes: int = 0
    messages: int = 0
    skipped: str | None = None
    #: Below the vendor's minimum audience size: nothing was sent (``skipped`` says why).
    held: bool = False


class ListScheduler(PollingWorker):
    """Run list syncs when due; one instance per process that runs workers."""

    name = "lists"

    def __init__(self, db: Database, config: ActivationConfig, *, clock: Callable[[], int] = now_ms,
                 tick: float = 1.0) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.poll_interval = tick
        self.outbox = Outbox(db, clock=clock)
        self.last_results: list[ListSyncResult] = []

    # -- loop ------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Sync every (list destination, audience) that is due; 0 so the loop waits a tick between rounds."""
        self.last_results = self.sync_due()
        return 0

    def sync_due(self) -> list[ListSyncResult]:
        """Sync every (list destination, audience) that is due."""
        out: list[ListSyncResult] = []
        for dest in self.config.list_destinations:
            for link in dest.links:
                result = self._sync(dest, link, force=False)
                if result is not None:
                    out.append(result)
        return out

    def sync_now(self, destination_id: str) -> list[ListSyncResult]:
        """Sync every audience of one list destination now, whatever the schedule says."""
        dest = self.config.by_id().get(destination_id)
        if dest is None or dest.mode != "list":
            raise KeyError(destination_id)
        return [r for c in dest.links if (r := self._sync(dest, c, force=True)) is not None]

    # -- one sync --------------------------------------------------------------------------------

    def _sync(self, dest: ActivationDestination, link: DestinationLink, *, force: bool) -> ListSyncResult | None:
        conn = self.db.connect()
        try:
            with conn.transaction():
                apply_receipts(conn)
                return self._sync_in(conn, dest, link, force=force)
        finally:
            conn.close()

    def _sync_in(self, conn: Connection, dest: ActivationDestination, link: DestinationLink, *,
                 force: bool) -> ListSyncResult | None:
        comp = link.computation
        now = self.clock()
        row = conn.fetchone("SELECT created, external_id, sync_seq, next_sync_at_ms, last_sync_at_ms"
                            " FROM activation_lists WHERE destination_id = ? AND computation_id = ?",
                            (dest.id, comp.id))
        if row is None:
            conn.execute("INSERT INTO activation_lists (destination_id, computation_id, computation_key, created,"
                         " sync_seq, next_sync_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                         (dest.id, comp.id, comp.key, False, 0, now))
            row = (False, None, 0, now, None)
        created, external_id, seq, next_at = bool(row[0]), row[1], int(row[2]), int(row[3])
        if not force and next_at > now:
            return None
        order_key = list_order_key(comp.id)
        if receipts.busy(conn, dest.id, order_key):
            return ListSyncResult(dest.id, comp.key, skipped="previous sync still delivering")
        if created and receipts.died_with(conn, dest.id, order_key, LIST_GONE, int(row[4] or 0)):
            log.warning("the vendor's list is gone; creating it again and uploading every member",
                        destination=dest.id, audience=comp.key, list_id=external_id)
            self._forget_list(conn, dest.id, comp.id)
            created, external_id = False, None
        plan = strategies(link.settings.id_sync, link.settings.include_anonymous)
        account = comp.level == "account"  # the list holds the users of the member accounts
        if not created and dest.min_audience_size > 0:
            size = count_members(conn, comp.key, plan, account=account)
            if size < dest.min_audience_size:
                return self._hold(conn, dest, comp.key, comp.id, size, now)
        batches = _Batches(self, conn, dest, comp, seq + 1, now, external_id)
        if not created:
            batches.enqueue("create", [])
        id_first = dest.resolved.adapter.list_id_before_members
        if created or not id_first:
            size = max(1, dest.batch_size)
            categories = dest.consent_categories
            removed: set[tuple[str, str]] = set()
            if created:  # a list never created holds nothing to remove
                for members in stream_removes(conn, dest.id, comp.id, comp.key, plan, size, account=account):
                    if categories:
                        removed.update((m.identifier.type, m.identifier.value) for m in members)
                    batches.enqueue("remove", members)
                if categories:  # a member that withdrew consent leaves the list
                    for held in stream_held(conn, dest.id, comp.id, size):
                        allowed = consenting(conn, [m.profile_id for m in held], categories)
                        gone = [m for m in held if m.profile_id not in allowed
                                and (m.identifier.type, m.identifier.value) not in removed]
                        if gone:
                            batches.enqueue("remove", gone)
            for members in stream_adds(conn, dest.id, comp.id, comp.key, plan, size, account=account):
                if categories:  # only consenting members are uploaded
                    allowed = consenting(conn, [m.profile_id for m in members], categories)
                    members = [m for m in members if m.profile_id in allowed]
                if members:
                    batches.enqueue("add", members)
        # A create sent alone is the first half of the first sync: the upload follows as soon as the
        # vendor's id is confirmed, not a whole schedule later.
        next_sync = now if (id_first and not created) else now + int(dest.interval_s * 1000)
        conn.execute("UPDATE activation_lists SET sync_seq = ?, last_sync_at_ms = ?, next_sync_at_ms = ?,"
                     " held_reason = NULL WHERE destination_id = ? AND computation_id = ?",
                     (seq + 1, now, next_sync, dest.id, comp.id))
        if batches.messages:
            log.info("list sync", destination=dest.id, audience=comp.key, adds=batches.counts["add"],
                     removes=batches.counts["remove"], created=not created)
        return ListSyncResult(dest.id, comp.key, created=not created, adds=batches.counts["add"],
                              removes=batches.counts["remove"], messages=batches.messages)

    def _hold(self, conn: Connection, dest: ActivationDestination, computation_key: str, computation_id: str,
              size: int, now: int) -> ListSyncResult:
        """Keep a new list from being created while the audience is below the vendor's minimum.

        Vendors do not serve smaller audiences (Facebook, Google: 100), and creating one early
        would only make an empty list appear in the ad account. The reason is stored for the
        status views, and the check runs again at each tick of the schedule, so the list is
        created and uploaded as soon as the audience is big enough.
        """
        vendor = dest.resolved.adapter.name
        reason = (f"held: {size} member{'s' if size != 1 else ''} with an identifier for this destination;"
                  f" {vendor} needs at least {dest.min_audience_size}. The list is created and uploaded"
                  " once the audience reaches that size.")
        conn.execute("UPDATE activation_lists SET held_reason = ?, member_count = ?, next_sync_at_ms = ?"
                     " WHERE destination_id = ? AND computation_id = ?",
                     (reason, size, now + int(dest.interval_s * 1000), dest.id, computation_id))
        log.info("list sync held below the vendor's minimum audience size", destination=dest.id,
                 audience=computation_key, members=size, minimum=dest.min_audience_size)
        return ListSyncResult(dest.id, computation_key, skipped=reason, held=True)

    @staticmethod
    def _forget_list(conn: Connection, destination_id: str, computation_id: str) -> None:
        conn.execute("UPDATE activation_lists SET created = ?, external_id = NULL WHERE destination_id = ?"
                     " AND computation_id = ?", (False, destination_id, computation_id))
        conn.execute("DELETE FROM activation_list_members WHERE destination_id = ? AND computation_id = ?",
                     (destination_id, computation_id))


class _Batches:
    """Enqueues one sync run's operations as they stream in: each ``audience_list`` message with the
    delivery hook's view of it (``meta``: the members to fold into the confirmed snapshot)."""

    def __init__(self, scheduler: ListScheduler, conn: Connection, dest: ActivationDestination,
                 computation: ComputationRef, sync_seq: int, now: int, external_id: str | None) -> None:
        self.scheduler, self.conn, self.dest, self.computation = scheduler, conn, dest, computation
        self.sync_id, self.now, self.external_id = str(sync_seq), now, external_id
        self.counts = {"create": 0, "add": 0, "remove": 0}
        self.index = {"create": 0, "add": 0, "remove": 0}
        self.messages = 0

    def enqueue(self, action: str, members: Sequence[ListMember]) -> None:
        message = list_message(self.computation, action, self.index[action], members, self.dest.target,
                               sync_id=self.sync_id, timestamp_ms=self.now)
        if self.external_id:
            message["context"]["personas"]["external_audience_id"] = self.external_id
        meta = {"confirms": LIST_META, "computation_id": self.computation.id, "action": action,
                "members": [[m.profile_id, m.identifier.type, m.identifier.value] for m in members]}
        self.scheduler.outbox.enqueue(self.conn, self.dest.id, list_order_key(self.computation.id), message,
                                      computation_id=self.computation.id, meta=meta, at_ms=self.now)
        self.index[action] += 1
        self.counts[action] += len(members) if action != "create" else 1
        self.messages += 1
