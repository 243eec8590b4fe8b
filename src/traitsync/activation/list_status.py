"""Where each list of a list destination stands, for the API and the CLI.

A list sync can be held (the audience below the vendor's minimum size) without any message
entering delivery, so the delivery counts alone would show nothing happening. This view puts
the reason next to the list: created or not, the vendor's list id, how many identifiers it is
confirmed to hold, and when it last synced and syncs next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traitsync.store.database import Connection


@dataclass(frozen=True)
class ListStatus:
    audience: str
    computation_id: str
    created: bool
    list_id: str | None
    on_list: int
    held_reason: str | None
    held_members: int | None
    last_sync_at_ms: int | None
    next_sync_at_ms: int

    @property
    def state(self) -> str:
        if self.held_reason:
            return "held"
        return "synced" if self.created else "creating"

    def as_dict(self) -> dict[str, Any]:
        return {"audience": self.audience, "computation_id": self.computation_id, "state": self.state,
                "created": self.created, "list_id": self.list_id, "identifiers_on_list": self.on_list,
                "held_reason": self.held_reason, "members_when_held": self.held_members,
                "last_sync_at_ms": self.last_sync_at_ms, "next_sync_at_ms": self.next_sync_at_ms}


def list_statuses(conn: Connection, destination_id: str) -> list[ListStatus]:
    """Every audience list of one destination that has been synced (or held) at least once."""
    held = {str(c): int(n) for c, n in conn.fetchall(
        "SELECT computation_id, COUNT(*) FROM activation_list_members WHERE destination_id = ?"
        " GROUP BY computation_id", (destination_id,))}
    rows = conn.fetchall(
        "SELECT computation_key, computation_id, created, external_id, held_reason, member_count, last_sync_at_ms,"
        " next_sync_at_ms FROM activation_lists WHERE destination_id = ? ORDER BY computation_key",
        (destination_id,))
    return [ListStatus(audience=str(key), computation_id=str(cid), created=bool(created),
                       list_id=None if ext is None else str(ext), on_list=held.get(str(cid), 0),
                       held_reason=reason, held_members=None if reason is None or count is None else int(count),
                       last_sync_at_ms=None if last is None else int(last), next_sync_at_ms=int(nxt))
            for key, cid, created, ext, reason, count, last, nxt in rows]
