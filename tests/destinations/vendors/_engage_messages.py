"""Engage messages as event destinations receive them (segment-spec.md 5.2-5.3), for vendor tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from traitsync.destinations.base import Destination, Item
from traitsync.destinations.mappings import map_fields

TS = "2026-11-30T12:00:00.000Z"
TS_S = 1796040000
TS_MS = TS_S * 1000


def _personas(klass: str, key: str) -> dict[str, Any]:
    return {"computation_class": klass, "computation_key": key, "computation_id": f"{klass[:3]}_1",
            "namespace": "spa_1", "space_id": "spa_1"}


def audience_identify(n: int = 1, member: bool = True, *, email: str | None = "ann@example.com",
                      user_id: str | None = "user-1", key: str = "vip_users") -> dict[str, Any]:
    traits: dict[str, Any] = {key: member}
    if email:
        traits["email"] = email
    msg: dict[str, Any] = {"type": "identify", "traits": traits, "context": {"personas": _personas("audience", key)},
                           "messageId": f"m{n}", "timestamp": TS}
    if user_id:
        msg["userId"] = user_id
    else:
        msg["anonymousId"] = "anon-1"
    return msg


def trait_identify(n: int = 1, value: Any = 450.0, *, email: str | None = "ann@example.com",
                   user_id: str | None = "user-1", key: str = "ltv_180d") -> dict[str, Any]:
    msg = audience_identify(n, True, email=email, user_id=user_id, key=key)
    msg["traits"][key] = value
    msg["context"]["personas"] = _personas("trait", key)
    return msg


def audience_track(n: int = 1, member: bool = True, *, email: str | None = "ann@example.com",
                   user_id: str | None = "user-1", key: str = "vip_users") -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "track", "event": "Audience Entered" if member else "Audience Exited",
                           "properties": {"audience_key": key, key: member},
                           "context": {"personas": _personas("audience", key)},
                           "messageId": f"m{n}", "timestamp": TS}
    if email:
        msg["context"]["traits"] = {"email": email}
    if user_id:
        msg["userId"] = user_id
    else:
        msg["anonymousId"] = "anon-1"
    return msg


def trait_track(n: int = 1, value: Any = 450.0, *, email: str | None = "ann@example.com",
                user_id: str | None = "user-1", key: str = "ltv_180d") -> dict[str, Any]:
    msg = audience_track(n, True, email=email, user_id=user_id, key=key)
    msg["event"] = "Trait Computed"
    msg["properties"] = {"trait_key": key, key: value}
    msg["context"]["personas"] = _personas("trait", key)
    return msg


def items(adapter: Destination[Any], messages: Sequence[dict[str, Any]]) -> list[Item]:
    """Items as delivery builds them: the adapter's default mappings applied to each message."""
    return [Item(m, map_fields(adapter.default_mappings, m)) for m in messages]


def no_secret(secret: str, *records: Any) -> None:
    """Assert ``secret`` appears in none of the given attempt records / request logs."""
    assert secret not in json.dumps(records, default=str)
