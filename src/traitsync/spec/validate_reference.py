"""The plain, readable message checks: the oracle that the fast ``validate.normalise`` is held to.

Each Segment rule is its own small function here, in Segment's order (segment-spec 1.10). The
hot path in ``validate.py`` inlines the same rules into one function for speed; a property test
(``tests/spec/test_validate.py``) feeds both the same messages and requires identical answers,
so a change of rule is made here first, then mirrored there. The ``context`` checks are the one
part written once, in ``validate.check_context``, and used by both.
"""

from __future__ import annotations

import uuid
from typing import Any

from traitsync.spec.event import event_name_of
from traitsync.spec.timestamps import corrected_timestamp_ms, format_iso_ms, format_received_ms, parse_iso_ms
from traitsync.spec.validate import MAX_MESSAGE_ID_CHARS, MESSAGE_TYPES, Accepted, Rejection, check_context


def _is_nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _check_ids(msg: dict[str, Any]) -> Rejection | None:
    has_user = "userId" in msg and msg["userId"] is not None
    has_anon = "anonymousId" in msg and msg["anonymousId"] is not None
    if msg.get("type") == "alias":
        for key in ("userId", "previousId"):
            if msg.get(key) is None:
                return Rejection("id_required", f"alias requires {key}")
            if not _is_nonempty_str(msg[key]):
                return Rejection("id_not_string", f"{key} must be a non-empty string")
        if has_anon and not _is_nonempty_str(msg["anonymousId"]):
            return Rejection("id_not_string", "anonymousId must be a non-empty string")
        return None
    if not has_user and not has_anon:
        return Rejection("no_user_anon_id", "userId or anonymousId is required")
    if has_user and not _is_nonempty_str(msg["userId"]):
        return Rejection("id_not_string", "userId must be a non-empty string")
    if has_anon and not _is_nonempty_str(msg["anonymousId"]):
        return Rejection("id_not_string", "anonymousId must be a non-empty string")
    return None


def _check_type_fields(msg: dict[str, Any]) -> Rejection | None:
    kind = msg["type"]
    if kind == "track":
        if "event" not in msg or msg["event"] is None:
            return Rejection("event_not_defined", "track requires an event name")
        if not _is_nonempty_str(msg["event"]):
            return Rejection("event_not_string", "event must be a non-empty string")
    if "properties" in msg and msg["properties"] is not None and not isinstance(msg["properties"], dict):
        return Rejection("properties_not_object", "properties must be an object")
    if "traits" in msg and msg["traits"] is not None and not isinstance(msg["traits"], dict):
        return Rejection("traits_not_object", "traits must be an object")
    if kind in ("page", "screen"):
        for key, code in (("name", "name_not_string"), ("category", "category_not_string")):
            if key in msg and msg[key] is not None and not _is_nonempty_str(msg[key]):
                return Rejection(code, f"{kind} {key} must be a non-empty string")
    if kind == "group":
        group_id = msg.get("groupId")
        if group_id is None:
            return Rejection("id_required", "group requires groupId")
        if not _is_nonempty_str(group_id):
            return Rejection("id_not_string", "groupId must be a non-empty string")
    return None


def _time_field(msg: dict[str, Any], key: str) -> tuple[int | None, Rejection | None]:
    value = msg.get(key)
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, Rejection("invalid_timestamp", f"{key} must be an ISO-8601 string")
    ms = parse_iso_ms(value)
    if ms is None:
        return None, Rejection("invalid_timestamp", f"{key} is not an ISO-8601 timestamp: {value[:40]!r}")
    return ms, None


def normalise(raw: Any, *, received_at_ms: int, default_type: str | None = None,
              batch_sent_at: Any = None, keep_received_at: bool = False) -> Accepted | Rejection:
    """Check one message and return it normalised, or the first reason it is refused.

    Normalising means: ``type`` from the route when absent, a ``messageId`` when absent,
    ``originalTimestamp`` kept, ``timestamp`` corrected for device clock skew, ``receivedAt``
    set, every time written as ISO-8601 UTC with milliseconds, an identify's ``traits`` taken
    from ``context.traits`` when it has none of its own, and the write key stripped so that no
    secret is ever stored. File imports pass
    ``keep_received_at`` so that restoring an export reproduces it exactly; the HTTP API never
    trusts a client's ``receivedAt``.
    """
    if not isinstance(raw, dict):
        return Rejection("bad_request", "each message must be a JSON object")
    msg: dict[str, Any] = raw  # the caller's freshly parsed dict: normalised in place, no copy
    if keep_received_at and isinstance(msg.get("receivedAt"), str):
        kept = parse_iso_ms(msg["receivedAt"])
        if kept is not None:
            received_at_ms = kept
    kind = msg.get("type", default_type)
    if default_type is not None and kind != default_type:
        kind = default_type  # the route decides; Segment ignores a conflicting body type
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        return Rejection("bad_request", f"type must be one of {', '.join(sorted(MESSAGE_TYPES))}")
    msg["type"] = kind
    message_id = msg.get("messageId")
    if message_id is None:
        message_id = f"ts-{uuid.uuid4()}"
    elif not _is_nonempty_str(message_id):
        return Rejection("bad_request", "messageId must be a non-empty string")
    elif len(message_id) > MAX_MESSAGE_ID_CHARS:
        return Rejection("message_id_too_long", f"messageId is {len(message_id)} characters; at most "
                         f"{MAX_MESSAGE_ID_CHARS} are allowed", message_id=message_id[:MAX_MESSAGE_ID_CHARS])
    # A rejection names the client's own messageId only; a generated one would mean nothing to it.
    client_id = raw.get("messageId") if isinstance(raw.get("messageId"), str) else None
    context = msg.get("context")
    for check in (_check_ids(msg), _check_type_fields(msg), None if context is None else check_context(context)):
        if check is not None:
            check.message_id = client_id
            return check
    integrations = msg.get("integrations")
    if integrations is not None and not isinstance(integrations, dict):
        return Rejection("bad_request", "integrations must be an object", message_id=client_id)

    original_key = "originalTimestamp" if msg.get("originalTimestamp") is not None else "timestamp"
    original_ms, err = _time_field(msg, original_key)
    if err is None and msg.get("sentAt") is None and batch_sent_at is not None:
        msg["sentAt"] = batch_sent_at
    sent_ms, err2 = _time_field(msg, "sentAt") if err is None else (None, None)
    err = err or err2
    if err is not None:
        err.message_id = client_id
        return err
    timestamp_ms = corrected_timestamp_ms(received_at_ms, sent_ms, original_ms)
    if timestamp_ms < 0:
        return Rejection("invalid_timestamp", "timestamp is before 1970-01-01", message_id=client_id)
    if original_ms is not None:
        msg["originalTimestamp"] = format_iso_ms(original_ms)
    if sent_ms is not None:
        msg["sentAt"] = format_iso_ms(sent_ms)
    msg["timestamp"] = format_received_ms(timestamp_ms) if timestamp_ms == received_at_ms \
        else format_iso_ms(timestamp_ms)
    if kind == "identify" and msg.get("traits") is None:
        # RudderStack's Python library sends identify traits only in context.traits.
        context = msg.get("context")
        if isinstance(context, dict) and isinstance(context.get("traits"), dict):
            msg["traits"] = dict(context["traits"])
    msg["receivedAt"] = format_received_ms(received_at_ms)
    msg.pop("writeKey", None)
    msg["messageId"] = message_id

    user_id = msg.get("userId")
    anon = msg.get("anonymousId")
    return Accepted(
        message_id=message_id,
        type=kind,
        event=event_name_of(msg),
        user_id=user_id if isinstance(user_id, str) else None,
        anonymous_id=anon if isinstance(anon, str) else None,
        timestamp_ms=timestamp_ms,
        received_at_ms=received_at_ms,
        body=msg,
    )


__all__ = ["normalise"]
