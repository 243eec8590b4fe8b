"""List destinations: on a schedule, upload audience membership diffs (segment-spec 5.8).

For each (list destination, audience) the scheduler keeps, in ``activation_list_members``, the
identifiers the vendor list is *confirmed* to hold, and in ``activation_lists`` whether the list
is confirmed created. A sync:

1. waits while the previous sync of that audience still has undelivered operations (a diff
   against membership that has not been confirmed yet would upload the same members twice);
2. reads the members from ``computed_values`` and their identifiers (ID Sync applies; removes
   go to every identifier the list holds, whatever ID Sync selects now);
3. plans with ``diff.plan_list_sync``: the first sync creates the list (named after the
   audience) and adds every member; later syncs only add and remove;
4. enqueues ``audience_list`` operations in the adapter's batch size, ordered per audience
   (create, removes, adds), in one transaction with the schedule update.

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

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from traitsync.activation.config import ActivationConfig, ActivationDestination, DestinationLink
from traitsync.activation.consent import consenting
from traitsync.activation.diff import ListMember, plan_list_sync
from traitsync.activation.ids import select_identifiers
from traitsync.activation.payloads import list_messages
from traitsync.activation.profiles import load_identifiers
from traitsync.activation.state import LIST_META, apply_receipts
from traitsync.activation.types import Identifier
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
        id_first = dest.resolved.adapter.list_id_before_members
        uploaded = self._uploaded(conn, dest.id, comp.id) if created else None
        members = {} if id_first and not created else self._members(conn, comp.key, link)
        if dest.consent_categories and members:  # a profile that withdrew consent is removed from the list
            allowed = consenting(conn, list(members), dest.consent_categories)
            members = {pid: ids for pid, ids in members.items() if pid in allowed}
        diff = plan_list_sync(uploaded, members)
        messages = list_messages(comp, diff, dest.target, sync_id=str(seq + 1), timestamp_ms=now,
                                 batch_size=dest.batch_size)
        metas = self._metas(comp.id, diff.create, diff.removes, diff.adds, dest.batch_size)
        for message, meta in zip(messages, metas, strict=True):
            if external_id:
                message["context"]["personas"]["external_audience_id"] = external_id
            self.outbox.enqueue(conn, dest.id, list_order_key(comp.id), message, computation_id=comp.id, meta=meta,
                                at_ms=now)
        # A create sent alone is the first half of the first sync: the upload follows as soon as the
        # vendor's id is confirmed, not a whole schedule later.
        next_sync = now if (id_first and diff.create) else now + int(dest.interval_s * 1000)
        conn.execute("UPDATE activation_lists SET sync_seq = ?, last_sync_at_ms = ?, next_sync_at_ms = ?"
                     " WHERE destination_id = ? AND computation_id = ?",
                     (seq + 1, now, next_sync, dest.id, comp.id))
        if messages:
            log.info("list sync", destination=dest.id, audience=comp.key, adds=len(diff.adds),
                     removes=len(diff.removes), created=diff.create)
        return ListSyncResult(dest.id, comp.key, created=diff.create, adds=len(diff.adds), removes=len(diff.removes),
                              messages=len(messages))

    @staticmethod
    def _metas(computation_id: str, create: bool, removes: Sequence[ListMember], adds: Sequence[ListMember],
               batch_size: int) -> list[dict[str, Any]]:
        """The delivery hook's view of each message, batched exactly as ``list_messages`` batches."""
        out: list[dict[str, Any]] = []
        if create:
            out.append({"confirms": LIST_META, "computation_id": computation_id, "action": "create", "members": []})
        size = max(1, batch_size)
        for action, members in (("remove", removes), ("add", adds)):
            for start in range(0, len(members), size):
                out.append({"confirms": LIST_META, "computation_id": computation_id, "action": action,
                            "members": [[m.profile_id, m.identifier.type, m.identifier.value]
                                        for m in members[start:start + size]]})
        return out

    @staticmethod
    def _forget_list(conn: Connection, destination_id: str, computation_id: str) -> None:
        conn.execute("UPDATE activation_lists SET created = ?, external_id = NULL WHERE destination_id = ?"
                     " AND computation_id = ?", (False, destination_id, computation_id))
        conn.execute("DELETE FROM activation_list_members WHERE destination_id = ? AND computation_id = ?",
                     (destination_id, computation_id))

    @staticmethod
    def _uploaded(conn: Connection, destination_id: str, computation_id: str) -> dict[str, frozenset[Identifier]]:
        held: dict[str, set[Identifier]] = {}
        for pid, id_type, value in conn.fetchall(
                "SELECT profile_id, id_type, id_value FROM activation_list_members WHERE destination_id = ?"
                " AND computation_id = ?", (destination_id, computation_id)):
            held.setdefault(str(pid), set()).add(Identifier(str(id_type), str(value)))
        return {pid: frozenset(ids) for pid, ids in held.items()}

    @staticmethod
    def _members(conn: Connection, computation_key: str, link: DestinationLink) -> dict[str, list[Identifier]]:
        rows = conn.fetchall("SELECT profile_id, value FROM computed_values WHERE computation_key = ?",
                             (computation_key,))
        profiles = [str(pid) for pid, value in rows if value is not None and json.loads(value) is True]
        identifiers = load_identifiers(conn, profiles)
        out: dict[str, list[Identifier]] = {}
        for pid in profiles:
            selected = select_identifiers(identifiers.get(pid, []), id_sync=link.settings.id_sync,
                                          include_anonymous=link.settings.include_anonymous)
            if selected:
                out[pid] = selected
        return out
