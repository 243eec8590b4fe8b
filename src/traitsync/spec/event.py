"""The stored form of one accepted message, as every stage downstream of the log sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Engage shows page and screen calls as these event names (segment-spec 1.1).
PAGE_EVENT = "Page Viewed"
SCREEN_EVENT = "Screen Viewed"


def event_name_of(message: dict[str, Any]) -> str | None:
    """The event name computations match on: the track name, or Page/Screen Viewed."""
    kind = message.get("type")
    if kind == "track":
        name = message.get("event")
        return name if isinstance(name, str) else None
    if kind == "page":
        return PAGE_EVENT
    if kind == "screen":
        return SCREEN_EVENT
    return None


@dataclass(slots=True)
class StoredEvent:
    """One message from the event log. ``body`` is the normalised Segment JSON.

    Times are integer epoch milliseconds so that windows compare without parsing; the ISO
    strings stay in ``body`` exactly as the client and the server wrote them.
    """

    offset: int
    message_id: str
    source_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    timestamp_ms: int
    received_at_ms: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def properties(self) -> dict[str, Any]:
        """Event properties; page and screen calls also expose their name as page_name/screen_name."""
        props = self.body.get("properties")
        result: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
        if self.type in ("page", "screen"):
            name = self.body.get("name")
            if name is not None:
                result.setdefault(f"{self.type}_name", name)
            category = self.body.get("category")
            if self.type == "page" and category is not None:
                result.setdefault("category", category)
        return result

    @property
    def traits(self) -> dict[str, Any]:
        """Traits carried by identify/group calls (``traits``); empty for other types."""
        traits = self.body.get("traits")
        return traits if isinstance(traits, dict) else {}

    @property
    def context(self) -> dict[str, Any]:
        ctx = self.body.get("context")
        return ctx if isinstance(ctx, dict) else {}
