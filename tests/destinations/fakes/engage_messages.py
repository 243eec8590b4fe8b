"""Engage messages as activation emits them (segment-spec 5.3), for vendor adapter tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitsync.destinations.base import Destination, Item
from traitsync.destinations.mappings import map_fields

TIMESTAMP = "2026-11-30T12:00:00.000Z"


def _personas(klass: str, key: str) -> dict[str, Any]:
    cid = ("aud_" if klass == "audience" else "tra_") + key[:6]
    return {"computation_class": klass, "computation_key": key, "computation_id": cid,
            "namespace": "spa_test", "space_id": "spa_test"}


def audience_identify(mid: str, key: str, member: bool, *, email: str | None = None, user_id: str | None = "u1",
                      **traits: Any) -> dict[str, Any]:
    body: dict[str, Any] = {key: member, **traits}
    if email:
        body["email"] = email
    message: dict[str, Any] = {"type": "identify", "traits": body, "messageId": mid, "timestamp": TIMESTAMP,
                               "context": {"personas": _personas("audience", key)}}
    if user_id:
        message["userId"] = user_id
    else:
        message["anonymousId"] = f"anon-{mid}"
    return message


def trait_identify(mid: str, key: str, value: Any, *, email: str | None = None, user_id: str | None = "u1",
                   **traits: Any) -> dict[str, Any]:
    message = audience_identify(mid, key, False, email=email, user_id=user_id, **traits)
    message["traits"][key] = value
    message["context"]["personas"] = _personas("trait", key)
    return message


def audience_track(mid: str, key: str, entered: bool, *, email: str | None = None, user_id: str | None = "u1",
                   **properties: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track", "event": "Audience Entered" if entered else "Audience Exited", "messageId": mid,
        "timestamp": TIMESTAMP, "properties": {"audience_key": key, key: entered, **properties},
        "context": {"personas": _personas("audience", key), **({"traits": {"email": email}} if email else {})}}
    if user_id:
        message["userId"] = user_id
    else:
        message["anonymousId"] = f"anon-{mid}"
    return message


def trait_track(mid: str, key: str, value: Any, *, email: str | None = None, user_id: str | None = "u1",
                **properties: Any) -> dict[str, Any]:
    message = audience_track(mid, key, True, email=email, user_id=user_id, **properties)
    message["event"] = "Trait Computed"
    message["properties"] = {"trait_key": key, key: value, **properties}
    message["context"]["personas"] = _personas("trait", key)
    return message


def item(adapter: Destination[Any], message: dict[str, Any], *, mappings: Mapping[str, Any] | None = None,
         traits: Mapping[str, Any] | None = None) -> Item:
    """The ``Item`` delivery would hand the adapter (default mappings applied)."""
    fields = map_fields(mappings if mappings is not None else adapter.default_mappings, message)
    return Item(message, fields, None, dict(traits or {}))
