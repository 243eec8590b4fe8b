"""Which identifiers an event carries (segment-spec 2.2), before any rule but blocking applies.

Extraction is a pure function of the message and the config so that a replay extracts exactly
the same identifiers; it never looks at the graph.

``RowExtractor`` is the worker's hot path: most events carry nothing but ``userId`` and
``anonymousId``, which the log already stores as columns, so decoding their JSON body would be
wasted work. It proves from the raw body text that no other identifier source is present and
only then skips the decode; anything it cannot prove goes through ``extract_body``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from traitsync.identity.config import IdentityConfig
from traitsync.spec.event import StoredEvent

#: (id_type, value) of the users collection.
Identifier = tuple[str, str]
_CAMEL = re.compile(r"_([a-z0-9])")
_SNAKE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def key_variants(key: str) -> tuple[str, ...]:
    """``app_id`` and ``appId`` name the same key (Segment matches both spellings)."""
    camel = _CAMEL.sub(lambda m: m.group(1).upper(), key)
    snake = _SNAKE.sub(lambda m: "_" + m.group(1).lower(), key)
    out: list[str] = []
    for k in (key, camel, snake):
        if k not in out:
            out.append(k)
    return tuple(out)


def _text(value: Any) -> str | None:
    """Identifier values are strings; numbers are accepted as their text, anything else is not."""
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Extracted:
    """Identifiers to resolve (users), the account's group id, and the values refused as blocked."""

    users: list[Identifier] = field(default_factory=list)
    group_id: str | None = None
    blocked: list[tuple[str, str, str]] = field(default_factory=list)  # (collection, type, value)

    def add(self, config: IdentityConfig, id_type: str, raw: Any) -> None:
        if raw is None:
            return
        value = raw if type(raw) is str and raw else _text(raw)
        if value is None:
            return
        pair = (id_type, value)
        if pair in self.users:
            return
        if config.rule(id_type).blocks(value):
            if ("users", id_type, value) not in self.blocked:
                self.blocked.append(("users", id_type, value))
            return
        self.users.append(pair)


def _device_ids(ex: Extracted, config: IdentityConfig, context: dict[str, Any]) -> None:
    device = _dict(context.get("device"))
    kind = device.get("type")
    if not isinstance(kind, str) or kind.lower() not in ("android", "ios"):
        return
    platform = kind.lower()
    ex.add(config, f"{platform}.id", device.get("id"))
    # Both platforms need adTrackingEnabled == true: the stricter, newer doc (segment-spec 10.3).
    if device.get("adTrackingEnabled") is True:
        ex.add(config, f"{platform}.idfa", device.get("advertisingId"))
    ex.add(config, f"{platform}.push_token", device.get("token"))


def extract(event: StoredEvent, config: IdentityConfig) -> Extracted:
    """The identifiers of one event, in a fixed order (so demotion ties break the same way)."""
    return extract_body(event.type, event.body, config)


def extract_body(kind: str, body: dict[str, Any], config: IdentityConfig) -> Extracted:
    """``extract`` on a decoded body and its message type (what the log stores as columns)."""
    ex = Extracted()
    context = _dict(body.get("context"))
    traits = _dict(body.get("traits")) if kind == "identify" else {}
    ctx_traits = _dict(context.get("traits"))
    props = _dict(body.get("properties"))

    ex.add(config, "user_id", body.get("userId"))
    if traits:
        ex.add(config, "email", traits.get("email"))
    if ctx_traits:
        ex.add(config, "email", ctx_traits.get("email"))
    ex.add(config, "anonymous_id", body.get("anonymousId"))
    if "device" in context:
        _device_ids(ex, config, context)
    for holder in (context.get("integrations"), body.get("integrations")):
        if holder:
            ga = _dict(_dict(holder).get("Google Analytics"))
            ex.add(config, "ga_client_id", ga.get("clientId"))

    for id_type, variants in config.custom_variants.items():
        for variant in variants:
            for holder in (traits, ctx_traits, props):
                if variant in holder:
                    ex.add(config, id_type, holder[variant])
    externals = context.get("externalIds")
    if isinstance(externals, list):
        for raw in externals:
            item = _dict(raw)
            ext_type = item.get("type")
            collection = item.get("collection", "users")
            if not isinstance(ext_type, str) or not ext_type or collection != "users":
                continue
            # Types inside context.externalIds must be lowercase; we lowercase rather than drop.
            ex.add(config, ext_type.lower(), item.get("id"))

    if kind == "group":
        group = _text(body.get("groupId"))
        if group is not None:
            if config.rule("group_id").blocks(group):
                ex.blocked.append(("accounts", "group_id", group))
            else:
                ex.group_id = group
    return ex


def identifier_reader(config: IdentityConfig) -> Callable[[dict[str, Any]], list[Identifier]]:
    """Every person identifier identity would read from a message, blocked values included.

    Ingest checks suppressions with it, so that a suppressed identifier of any configured type
    (a custom id read from traits or properties, a device id, an ``externalIds`` entry) stops
    the message, not only ``userId``, ``anonymousId`` and email.
    """

    def read(body: dict[str, Any]) -> list[Identifier]:
        kind = body.get("type")
        ex = extract_body(kind if isinstance(kind, str) else "track", body, config)
        return ex.users + [(id_type, value) for collection, id_type, value in ex.blocked if collection == "users"]

    return read


#: Keys whose presence anywhere in a body may add identifiers beyond userId/anonymousId
#: (traits and context.traits, context.device, integrations, context.externalIds).
_SLOW_KEYS = ("traits", "device", "integrations", "externalIds")


class RowExtractor:
    """Extraction from a log row's columns, decoding the body only when it can matter.

    The shortcut is exact, not a heuristic. The log stores ``user_id``/``anonymous_id`` columns
    equal to the body's ``userId``/``anonymousId`` (validation only accepts non-empty strings or
    nothing). For a message that is neither identify nor group, ``extract_body`` reads anything
    else only through the keys in ``_SLOW_KEYS`` and the custom-id key variants; if none of those
    appears as a quoted string in the body text, no such key exists in the object. JSON could
    spell a key with escapes (``"tr\\u0061its"``), so any backslash sends the row the slow way.
    """

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        variants = [v for names in config.custom_variants.values() for v in names]
        self.needles = tuple(orjson.dumps(k).decode() for k in (*_SLOW_KEYS, *variants))
        self.user_rule = config.rule("user_id")
        self.anon_rule = config.rule("anonymous_id")

    def needs_body(self, kind: str, body_text: str) -> bool:
        """Whether ``extract_body`` could find more than the id columns in this message."""
        if kind == "identify" or kind == "group" or "\\" in body_text:
            return True
        for needle in self.needles:  # noqa: SIM110 - any() over a generator is slower on this hot path
            if needle in body_text:
                return True
        return False

    def from_columns(self, user_id: str | None, anonymous_id: str | None) -> Extracted:
        """``extract_body`` for a message whose only identifier sources are userId and anonymousId."""
        users: list[Identifier] = []
        blocked: list[tuple[str, str, str]] = []
        if user_id:
            if self.user_rule.blocks(user_id):
                blocked.append(("users", "user_id", user_id))
            else:
                users.append(("user_id", user_id))
        if anonymous_id:
            if self.anon_rule.blocks(anonymous_id):
                blocked.append(("users", "anonymous_id", anonymous_id))
            else:
                users.append(("anonymous_id", anonymous_id))
        return Extracted(users, None, blocked)
