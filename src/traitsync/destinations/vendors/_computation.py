"""Reading an Engage message: which computation changed, to what, for whom.

Every vendor adapter needs the same few facts from the messages activation emits (segment-spec
5.2/5.3): an identify carries ``traits.<key> = value`` (audience booleans, trait values, plus
enrichment traits and ``email``); a track is ``Audience Entered`` / ``Audience Exited`` /
``Trait Computed`` with ``properties.audience_key`` or ``properties.trait_key`` and the value
under the key. The email is in ``traits.email`` on identify and ``context.traits.email`` on track.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Mapping that finds the email wherever Engage puts it (identify traits, track context traits).
EMAIL_MAPPING: dict[str, Any] = {"@first": ["$.traits.email", "$.context.traits.email", "$.properties.email"]}
#: The user id, else the anonymous id.
USER_ID_MAPPING: dict[str, Any] = {"@first": ["$.userId"]}
KEY_PROPERTIES = ("audience_key", "trait_key")


@dataclass(frozen=True)
class Change:
    """What one message says changed.

    ``attributes`` are the values the message carries for the profile: every identify trait, or
    for a track its properties without ``audience_key`` / ``trait_key`` (so ``{<key>: value}``
    plus enrichment traits).
    """

    computation_class: str
    key: str | None
    value: Any
    event: str | None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_track(self) -> bool:
        return self.event is not None


def personas(message: Mapping[str, Any]) -> Mapping[str, Any]:
    context = message.get("context")
    found = context.get("personas") if isinstance(context, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def change_of(message: Mapping[str, Any]) -> Change:
    persona = personas(message)
    klass = str(persona.get("computation_class") or "")
    if message.get("type") == "track":
        props = message.get("properties")
        props = dict(props) if isinstance(props, Mapping) else {}
        key = props.get("audience_key") or props.get("trait_key") or persona.get("computation_key")
        if not klass:
            klass = "trait" if "trait_key" in props else "audience"
        attributes = {k: v for k, v in props.items() if k not in KEY_PROPERTIES}
        return Change(klass, str(key) if key else None, props.get(str(key)) if key else None,
                      str(message.get("event") or ""), attributes)
    traits = message.get("traits")
    traits = dict(traits) if isinstance(traits, Mapping) else {}
    key = persona.get("computation_key")
    return Change(klass, str(key) if key else None, traits.get(str(key)) if key else None, None, traits)


def email_of(message: Mapping[str, Any]) -> str | None:
    for container in (message.get("traits"), (message.get("context") or {}).get("traits"), message.get("properties")):
        if isinstance(container, Mapping) and isinstance(container.get("email"), str) and container["email"]:
            return str(container["email"])
    return None


def timestamp_of(message: Mapping[str, Any]) -> dt.datetime:
    """The message's ``timestamp`` (ISO 8601) as an aware datetime; now when absent or unreadable."""
    raw = message.get("timestamp") or message.get("originalTimestamp")
    if isinstance(raw, str):
        try:
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    return dt.datetime.now(dt.UTC)


def iso_timestamp(message: Mapping[str, Any]) -> str:
    return timestamp_of(message).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def unix_seconds(message: Mapping[str, Any]) -> int:
    return int(timestamp_of(message).timestamp())


def text(value: Any) -> str | None:
    """A mapped field as a non-empty string, else None."""
    if value is None or isinstance(value, Mapping | list):
        return None
    out = str(value).strip()
    return out or None


def scalar(value: Any) -> Any:
    """Vendors that store flat fields take scalars; lists and objects travel as JSON text."""
    import json

    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def size_chunks(sizes: list[int], max_count: int, max_bytes: int, overhead: int = 64) -> list[list[int]]:
    """Positions grouped in order so no group has more than ``max_count`` entries or, with the
    envelope ``overhead``, more than ``max_bytes`` of encoded entries (a lone oversized entry
    still gets a group of its own: the vendor's answer decides it)."""
    groups: list[list[int]] = []
    total = overhead
    for position, size in enumerate(sizes):
        if not groups or len(groups[-1]) >= max_count or total + size + 1 > max_bytes:
            groups.append([])
            total = overhead
        groups[-1].append(position)
        total += size + 1
    return groups
