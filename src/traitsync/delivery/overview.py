"""Delivery Overview and the debugger, read straight from the outbox.

Segment's Delivery Overview (segment-spec 5.5) shows, per destination and time range:
*Filtered at destination* by discard reason, *Events pending retry*, *Failed delivery* by code
and *Successful delivery*; Actions destinations add a retry count. A message is counted in the
range by when it entered delivery (``created_at_ms``) and in the stage of its current state,
so the stages of one range always add up to the messages created in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from traitsync.delivery.outbox import DEAD, DELIVERED, FILTERED, IN_FLIGHT, PENDING, RETRY_WAIT
from traitsync.destinations.base import LIST_MESSAGE_TYPE
from traitsync.destinations.pii import sha256_hex
from traitsync.store.database import Connection


@dataclass
class DestinationOverview:
    destination_id: str
    filtered_at_destination: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    pending_retry: int = 0
    failed_delivery: dict[str, int] = field(default_factory=dict)
    successful_delivery: int = 0
    retried_then_delivered: int = 0

    @property
    def total(self) -> int:
        return (sum(self.filtered_at_destination.values()) + self.pending + self.pending_retry
                + sum(self.failed_delivery.values()) + self.successful_delivery)

    def as_dict(self) -> dict[str, Any]:
        return {"destination_id": self.destination_id,
                "filtered_at_destination": dict(sorted(self.filtered_at_destination.items())),
                "pending": self.pending, "pending_retry": self.pending_retry,
                "failed_delivery": dict(sorted(self.failed_delivery.items())),
                "successful_delivery": self.successful_delivery,
                "retried_then_delivered": self.retried_then_delivered}


def delivery_overview(conn: Connection, *, since_ms: int, until_ms: int,
                      destination_id: str | None = None) -> dict[str, DestinationOverview]:
    """Counts per destination for messages created in ``[since_ms, until_ms)``."""
    sql = ("SELECT destination_id, state, COALESCE(last_error_code, ''), attempts > 1, COUNT(*)"
           " FROM delivery_outbox WHERE created_at_ms >= ? AND created_at_ms < ?")
    params: list[Any] = [since_ms, until_ms]
    if destination_id is not None:
        sql += " AND destination_id = ?"
        params.append(destination_id)
    sql += " GROUP BY destination_id, state, COALESCE(last_error_code, ''), attempts > 1"
    out: dict[str, DestinationOverview] = {}
    for dest, state, code, retried, n in conn.fetchall(sql, params):
        view = out.setdefault(dest, DestinationOverview(dest))
        count = int(n)
        if state == FILTERED:
            view.filtered_at_destination[code or "FILTERED"] = view.filtered_at_destination.get(
                code or "FILTERED", 0) + count
        elif state == DELIVERED:
            view.successful_delivery += count
            if retried:
                view.retried_then_delivered += count
        elif state == DEAD:
            view.failed_delivery[code or "UNKNOWN"] = view.failed_delivery.get(code or "UNKNOWN", 0) + count
        elif state == RETRY_WAIT:
            view.pending_retry += count
        elif state in (PENDING, IN_FLIGHT):
            view.pending += count
    if destination_id is not None and destination_id not in out:
        out[destination_id] = DestinationOverview(destination_id)
    conn.commit()
    return out


@dataclass(frozen=True)
class AttemptView:
    attempt: int
    at_ms: int
    duration_ms: int
    http_status: int | None
    outcome: str
    code: str | None
    detail: str | None
    requests: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DebugEntry:
    outbox_id: int
    message_id: str
    message_type: str
    state: str
    created_at_ms: int
    last_error_code: str | None
    message: dict[str, Any]
    attempts: tuple[AttemptView, ...]


def for_display(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the debugger shows it: list members' identifiers only as SHA-256, so an
    audience upload never shows plain emails or phone numbers."""
    if message.get("type") != LIST_MESSAGE_TYPE or not message.get("members"):
        return message
    members = [{"type": m.get("type"), "sha256": sha256_hex(str(m.get("value", "")))} for m in message["members"]]
    return {**message, "members": members}


def recent_messages(conn: Connection, destination_id: str, *, limit: int = 50) -> list[DebugEntry]:
    """The debugger: the destination's newest messages with every attempt and its outcome."""
    rows = conn.fetchall(
        "SELECT id, message_id, message_type, state, created_at_ms, last_error_code, body"
        " FROM delivery_outbox WHERE destination_id = ? ORDER BY id DESC LIMIT ?", (destination_id, limit))
    attempts: dict[int, list[AttemptView]] = {}
    if rows:
        ids = [int(r[0]) for r in rows]
        marks = ", ".join("?" for _ in ids)
        for a in conn.fetchall(
                "SELECT outbox_id, attempt, at_ms, duration_ms, http_status, outcome, code, detail, requests"
                f" FROM delivery_attempts WHERE outbox_id IN ({marks}) ORDER BY outbox_id, attempt", ids):
            attempts.setdefault(int(a[0]), []).append(AttemptView(
                attempt=int(a[1]), at_ms=int(a[2]), duration_ms=int(a[3]),
                http_status=None if a[4] is None else int(a[4]), outcome=a[5], code=a[6], detail=a[7],
                requests=tuple(json.loads(a[8])) if a[8] else ()))
    conn.commit()
    return [DebugEntry(outbox_id=int(r[0]), message_id=r[1], message_type=r[2], state=r[3],
                       created_at_ms=int(r[4]), last_error_code=r[5], message=for_display(json.loads(r[6])),
                       attempts=tuple(attempts.get(int(r[0]), ()))) for r in rows]
