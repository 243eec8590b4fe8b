"""The transactional outbox: one table that is both the delivery queue and its state machine.

Activation calls ``Outbox.enqueue(conn, ...)`` on the connection that is recording its
results, so results and the messages they cause commit (or vanish) together. Workers then
move each row::

    pending -> in_flight -> delivered                     (terminal)
                         -> retry_wait -> in_flight ...
                         -> dead                          (terminal; replay -> pending)
    pending -> filtered                                   (terminal; never sent)

**Ordering, not superseding.** Rows with the same ``(destination_id, order_key)`` (the profile)
are delivered strictly in insertion order: only a key's oldest non-terminal row is claimable,
so a failing message holds back later messages for that profile until it is delivered or
dead. We chose this over "a newer value supersedes an older undelivered one" because Engage
payloads are not all last-write-wins: ``Audience Entered`` then ``Audience Exited`` are two
facts a destination must see in order, and dropping the enter would lose a journey trigger.
Dead rows are terminal and stop holding the key back (rudder-server does the same), so one
poison message cannot block a profile forever.

**Idempotent enqueue.** ``(destination_id, message_id)`` is unique and enqueue ignores
duplicates, so re-running activation after a crash re-inserts nothing; ``replay`` re-queues
dead rows themselves, so a replay sends the same ``messageId``s again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from traitsync.delivery.claims import ClaimPlan, OpenRow
from traitsync.store.database import Connection, Database
from traitsync.store.tables.delivery import OPEN_ROWS_SQL

PENDING: Final = "pending"
IN_FLIGHT: Final = "in_flight"
DELIVERED: Final = "delivered"
RETRY_WAIT: Final = "retry_wait"
DEAD: Final = "dead"
FILTERED: Final = "filtered"

TERMINAL_STATES = frozenset({DELIVERED, DEAD, FILTERED})
#: Allowed transitions; every UPDATE below guards on the source state, and tests walk this table.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING: frozenset({IN_FLIGHT}),
    IN_FLIGHT: frozenset({DELIVERED, RETRY_WAIT, DEAD, PENDING}),
    RETRY_WAIT: frozenset({IN_FLIGHT}),
    DEAD: frozenset({PENDING}),
    DELIVERED: frozenset(),
    FILTERED: frozenset(),
}

_COLUMNS = ("id, destination_id, order_key, message_id, message_type, computation_id, state, attempts, "
            "created_at_ms, first_attempt_at_ms, next_attempt_at_ms, last_error_code, body, meta, adapter_input")


#: Unfinished rows read per page by a claim's scan, and at most per claim (a queue longer than
#: that is served from its oldest part first, which is the part that is due).
_SCAN_PAGE = 500
_SCAN_MAX = 50_000
_ID_CHUNK = 500


class _Contended(Exception):
    """A row of the plan was taken or settled meanwhile: roll the claim back, take nothing."""


def _claim_lock_key(destination_id: str) -> int:
    digest = hashlib.sha256(f"traitsync.claim:{destination_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _json(value: Mapping[str, Any]) -> str:
    """Compact JSON; orjson for speed, the standard library for what orjson refuses (huge ints)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    destination_id: str
    order_key: str
    message_id: str
    message_type: str
    computation_id: str | None
    state: str
    attempts: int
    created_at_ms: int
    first_attempt_at_ms: int | None
    next_attempt_at_ms: int
    last_error_code: str | None
    message: dict[str, Any]
    meta: dict[str, Any] | None
    adapter_input: dict[str, Any] | None = None

    @classmethod
    def from_db(cls, row: Sequence[Any]) -> OutboxRow:
        return cls(id=int(row[0]), destination_id=row[1], order_key=row[2], message_id=row[3],
                   message_type=row[4], computation_id=row[5], state=row[6], attempts=int(row[7]),
                   created_at_ms=int(row[8]),
                   first_attempt_at_ms=None if row[9] is None else int(row[9]),
                   next_attempt_at_ms=int(row[10]), last_error_code=row[11],
                   message=orjson.loads(row[12]), meta=None if row[13] is None else orjson.loads(row[13]),
                   adapter_input=None if row[14] is None else orjson.loads(row[14]))


class Outbox:
    """Enqueue, claim, settle and replay outbox rows; every method but ``replay`` takes a connection."""

    def __init__(self, db: Database, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.clock = clock
        # Spelled as the partial indexes are, so the planner uses them (tables/delivery.py).
        self._open = OPEN_ROWS_SQL[db.dialect]

    def enqueue(self, conn: Connection, destination_id: str, profile_id: str, message: Mapping[str, Any], *,
                computation_id: str | None = None, meta: Mapping[str, Any] | None = None,
                filtered_reason: str | None = None, at_ms: int | None = None,
                adapter_input: Mapping[str, Any] | None = None) -> bool:
        """Add one message for delivery on ``conn`` (the caller commits); False if already queued.

        ``filtered_reason`` records a message that activation decided not to send (Segment's
        "Filtered at destination", e.g. ``FILTERED_BY_INTEGRATIONS_OBJECT``) so the overview
        counts it. ``meta`` is the caller's own data, handed back untouched with the delivery
        receipt (``receipts.py``), e.g. the snapshot the message confirms. ``adapter_input`` is
        what the adapter sees besides the message: ``previous`` state and enrichment ``traits``.
        """
        row = self.row(destination_id, profile_id, message, computation_id=computation_id, meta=meta,
                       filtered_reason=filtered_reason, at_ms=at_ms, adapter_input=adapter_input)
        return self.enqueue_rows(conn, [row]) == 1

    def row(self, destination_id: str, profile_id: str, message: Mapping[str, Any], *,
            computation_id: str | None = None, meta: Mapping[str, Any] | None = None,
            filtered_reason: str | None = None, at_ms: int | None = None,
            adapter_input: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """One message as an insert row for :meth:`enqueue_rows` (arguments as :meth:`enqueue`)."""
        message_id = message.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise ValueError("an outbox message needs a string messageId")
        at = self.clock() if at_ms is None else at_ms
        state, terminal = (FILTERED, True) if filtered_reason else (PENDING, False)
        return (destination_id, profile_id, message_id, str(message.get("type", "")), computation_id, state,
                terminal, at, at, at if filtered_reason else None, filtered_reason, _json(message),
                None if meta is None else _json(meta), None if adapter_input is None else _json(adapter_input),
                False)

    def enqueue_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert many rows from :meth:`row` in one statement, in order; returns how many were new.

        Activation enqueues several messages per change; one ``executemany`` per chunk of
        results instead of one statement per message took most of its time off the write lock.
        """
        if not rows:
            return 0
        cur = conn.executemany(
            "INSERT INTO delivery_outbox (destination_id, order_key, message_id, message_type,"
            " computation_id, state, terminal, attempts, created_at_ms, next_attempt_at_ms, finished_at_ms,"
            " last_error_code,"
            " body, meta, adapter_input, applied) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (destination_id, message_id) DO NOTHING", rows)
        return int(cur.rowcount) if cur.rowcount is not None and cur.rowcount >= 0 else len(rows)

    def claim(self, conn: Connection, destination_id: str, limit: int, *, lease_ms: int,
              at_ms: int | None = None) -> list[OutboxRow]:
        """Take up to ``limit`` due rows, each the head of its order key, and mark them in flight.

        The one-message-per-profile form of :meth:`claim_groups` (batch size 1, runs of 1).
        """
        groups = self.claim_groups(conn, destination_id, limit, 1, lease_ms=lease_ms, at_ms=at_ms, max_run=1)
        return [row for group in groups for row in group]

    def claim_groups(self, conn: Connection, destination_id: str, groups: int, batch_size: int, *,
                     lease_ms: int, at_ms: int | None = None, max_run: int | None = None,
                     repeats: bool = True) -> list[list[OutboxRow]]:
        """Take up to ``groups`` groups of due rows (see ``claims.py``) and mark them in flight.

        Each group is one exchange: a profile's due messages all sit in one group, in order, and
        no two groups share a profile. An ``in_flight`` row whose lease ran out belongs to a
        worker that died; it is due again.

        The scan reads outside the write transaction (SQLite has one write lock for the whole
        store, and ingestion and the engine need it); the update then takes only rows that are
        still due, and if another claimer got there first nothing is taken this round. On
        PostgreSQL claimers of one destination take turns on an advisory lock, so they never
        split one profile's run between them.
        """
        at = self.clock() if at_ms is None else at_ms
        plan = ClaimPlan(groups, batch_size, repeats=repeats)
        if max_run is not None:
            plan.per_group = max_run
        try:
            ids = self._claim_ids(conn, destination_id, plan, at, lease_ms)
        except _Contended:
            return []
        if not ids:
            return []
        rows = {row.id: row for row in self._rows(conn, ids)}
        conn.commit()
        return [[rows[r.id] for r in group] for group in plan.groups]

    def _claim_ids(self, conn: Connection, destination_id: str, plan: ClaimPlan, at: int, lease_ms: int
                   ) -> list[int]:
        """Plan the claim and mark its rows in flight; the ids taken (raises ``_Contended``)."""
        postgres = self.db.dialect == "postgresql"
        if postgres:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_claim_lock_key(destination_id),))
                self._scan(conn, destination_id, plan, at)
                ids = plan.ids()
                if ids and not self._take(conn, ids, at, lease_ms):
                    raise _Contended
            return ids
        self._scan(conn, destination_id, plan, at)
        conn.commit()
        ids = plan.ids()
        if ids:
            with conn.transaction():
                if not self._take(conn, ids, at, lease_ms):
                    raise _Contended
        return ids

    def _scan(self, conn: Connection, destination_id: str, plan: ClaimPlan, at: int) -> None:
        """Feed unfinished rows to ``plan`` in ``id`` order, a page at a time, until it is full.

        Rows in flight under a live lease, and the rows of their profiles, never come back from
        the store: under load they are most of the queue's head, and reading them into Python
        on every claim was most of delivery's CPU. What comes back is claimable, or a retry
        that is not due yet (which blocks its profile in the plan).
        """
        page = max(_SCAN_PAGE, plan.max_groups * plan.per_group * 2)
        after = 0
        scanned = 0
        while not plan.full and scanned < _SCAN_MAX:
            rows = conn.fetchall(
                "SELECT o.id, o.order_key, o.state, o.next_attempt_at_ms, o.lease_until_ms FROM delivery_outbox o"
                f" WHERE o.destination_id = ? AND o.{self._open} AND o.id > ?"
                " AND NOT (o.state = ? AND o.lease_until_ms >= ?)"
                " AND NOT EXISTS (SELECT 1 FROM delivery_outbox p WHERE p.destination_id = o.destination_id"
                f" AND p.order_key = o.order_key AND p.{self._open} AND p.id < o.id AND p.state = ?"
                " AND p.lease_until_ms >= ?) ORDER BY o.id LIMIT ?",
                (destination_id, after, IN_FLIGHT, at, IN_FLIGHT, at, page))
            for r in rows:
                state = r[2]
                due = (state in (PENDING, RETRY_WAIT) and int(r[3]) <= at) or \
                    (state == IN_FLIGHT and r[4] is not None and int(r[4]) < at)
                plan.add(OpenRow(int(r[0]), str(r[1]), due))
                if plan.full:
                    return
            if len(rows) < page:
                return
            after = int(rows[-1][0])
            scanned += len(rows)

    def _take(self, conn: Connection, ids: Sequence[int], at: int, lease_ms: int) -> bool:
        """Mark ``ids`` in flight if every one of them is still due; False if any was taken meanwhile."""
        taken = 0
        for start in range(0, len(ids), _ID_CHUNK):
            part = list(ids[start:start + _ID_CHUNK])
            cur = conn.execute(
                "UPDATE delivery_outbox SET state = ?, lease_until_ms = ?,"
                " first_attempt_at_ms = COALESCE(first_attempt_at_ms, ?)"
                f" WHERE id IN ({','.join('?' * len(part))})"
                " AND ((state IN (?, ?) AND next_attempt_at_ms <= ?) OR (state = ? AND lease_until_ms < ?))",
                (IN_FLIGHT, at + lease_ms, at, *part, PENDING, RETRY_WAIT, at, IN_FLIGHT, at))
            taken += int(cur.rowcount)
        return taken == len(ids)

    def _rows(self, conn: Connection, ids: Sequence[int]) -> list[OutboxRow]:
        out: list[OutboxRow] = []
        for start in range(0, len(ids), _ID_CHUNK):
            part = list(ids[start:start + _ID_CHUNK])
            out.extend(OutboxRow.from_db(r) for r in conn.fetchall(
                f"SELECT {_COLUMNS} FROM delivery_outbox WHERE id IN ({','.join('?' * len(part))})", part))
        return out

    def release(self, conn: Connection, ids: Sequence[int]) -> None:
        """Give claimed rows back untouched (shutdown before they were sent): no attempt counted."""
        if not ids:
            return
        with conn.transaction():
            conn.executemany(
                "UPDATE delivery_outbox SET state = CASE WHEN attempts = 0 THEN ? ELSE ? END,"
                " first_attempt_at_ms = CASE WHEN attempts = 0 THEN NULL ELSE first_attempt_at_ms END,"
                " lease_until_ms = NULL WHERE id = ? AND state = ?",
                [(PENDING, RETRY_WAIT, i, IN_FLIGHT) for i in ids])

    def release_in_flight(self, conn: Connection, destination_id: str) -> int:
        """Give back every in-flight row of a destination (the caller proved no live process owns them)."""
        ids = [int(r[0]) for r in conn.fetchall("SELECT id FROM delivery_outbox WHERE destination_id = ? AND state = ?",
                                                (destination_id, IN_FLIGHT))]
        conn.commit()
        self.release(conn, ids)
        return len(ids)

    def settle(self, conn: Connection, row: OutboxRow, state: str, *, at_ms: int, duration_ms: int,
               http_status: int | None, outcome: str, code: str | None = None, detail: str | None = None,
               next_attempt_at_ms: int | None = None, result: Mapping[str, Any] | None = None,
               requests: str | None = None) -> None:
        """Record one attempt of an in-flight row and move it to ``state`` (caller's transaction)."""
        if state not in TRANSITIONS[IN_FLIGHT] or state == PENDING:
            raise ValueError(f"cannot settle an attempt into {state!r}")
        attempt = row.attempts + 1
        conn.execute(
            "INSERT INTO delivery_attempts (outbox_id, attempt, at_ms, duration_ms, http_status, outcome,"
            " code, detail, requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.id, attempt, at_ms, duration_ms, http_status, outcome, code, detail, requests))
        conn.execute(
            "UPDATE delivery_outbox SET state = ?, terminal = ?, attempts = ?, last_attempt_at_ms = ?,"
            " next_attempt_at_ms = ?, finished_at_ms = ?, lease_until_ms = NULL, last_error_code = ?,"
            " last_error = ?, result = COALESCE(?, result) WHERE id = ? AND state = ?",
            (state, state in TERMINAL_STATES, attempt, at_ms,
             next_attempt_at_ms if next_attempt_at_ms is not None else at_ms,
             at_ms if state in TERMINAL_STATES else None, code, detail,
             None if result is None else json.dumps(dict(result), separators=(",", ":")), row.id, IN_FLIGHT))

    def filter(self, conn: Connection, row: OutboxRow, reason: str, *, at_ms: int) -> None:
        """A claimed row the destination cannot take at all (e.g. UNSUPPORTED_EVENT_TYPE)."""
        conn.execute(
            "UPDATE delivery_outbox SET state = ?, terminal = ?, finished_at_ms = ?, lease_until_ms = NULL,"
            " last_error_code = ? WHERE id = ? AND state = ?",
            (FILTERED, True, at_ms, reason, row.id, IN_FLIGHT))

    def replay(self, destination_id: str, since_ms: int, until_ms: int, code: str | None = None) -> int:
        """Re-queue dead rows that died in ``[since_ms, until_ms)`` (optionally with ``code``).

        The rows themselves go back to pending, so the same ``messageId``s are sent; their
        attempt counter and give-up window restart, while ``delivery_attempts`` keeps history.
        """
        conn = self.db.connect()
        try:
            sql = ("UPDATE delivery_outbox SET state = ?, terminal = ?, attempts = 0,"
                   " first_attempt_at_ms = NULL, next_attempt_at_ms = ?, finished_at_ms = NULL,"
                   " lease_until_ms = NULL"
                   " WHERE destination_id = ? AND state = ? AND finished_at_ms >= ? AND finished_at_ms < ?")
            params: list[Any] = [PENDING, False, self.clock(), destination_id, DEAD, since_ms, until_ms]
            if code is not None:
                sql += " AND last_error_code = ?"
                params.append(code)
            with conn.transaction():
                cur = conn.execute(sql, params)
                return int(cur.rowcount)
        finally:
            conn.close()

    def state_counts(self, conn: Connection, destination_id: str) -> dict[str, int]:
        rows = conn.fetchall("SELECT state, COUNT(*) FROM delivery_outbox WHERE destination_id = ?"
                             " GROUP BY state", (destination_id,))
        return {str(state): int(n) for state, n in rows}

    def next_due_ms(self, conn: Connection, destination_id: str) -> int | None:
        """When the earliest claimable row becomes due (for the worker's sleep), or None if none wait.

        Only the head of each order key counts: a row behind its profile's earlier message becomes
        claimable when that one settles, not at its own time.
        """
        value = conn.scalar(
            "SELECT MIN(CASE WHEN o.state = ? THEN o.lease_until_ms ELSE o.next_attempt_at_ms END)"
            f" FROM delivery_outbox o WHERE o.destination_id = ? AND o.{self._open} AND o.state IN (?, ?, ?)"
            " AND NOT EXISTS (SELECT 1 FROM delivery_outbox p WHERE p.destination_id = o.destination_id"
            f" AND p.order_key = o.order_key AND p.id < o.id AND p.{self._open})",
            (IN_FLIGHT, destination_id, PENDING, RETRY_WAIT, IN_FLIGHT))
        return None if value is None else int(value)
