"""Build exactly the seeds' Engage payloads (DESIGN 4.4; segment-spec 5.2-5.4).

* identify: ``traits.{key: value}``;
* track, trait: ``event`` "Trait Computed" (renamable), ``properties.trait_key`` + ``{key: value}``;
* track, audience: "Audience Entered"/"Audience Exited" (renamable), ``properties.audience_key`` +
  ``{key: true|false}``;
* group (account-level computations, one per account): ``groupId`` the account's ``group_id``,
  ``traits.{key: value}`` (audiences: true/false), ``anonymousId`` the account's profile id;
* every message: ``context.personas`` (computation_class, computation_id, computation_key - the
  key on the profile, per segment-spec 10.1 - namespace and space_id, both the space id),
  ``integrations`` ``{"All": false, "<Destination Name>": true}``, ``messageId``, ``timestamp``.

One message per identifier (``ids.py``): a ``user_id`` message carries ``userId``, an
``anonymous_id`` message ``anonymousId``; an email goes in ``traits.email`` on identify and
``context.traits.email`` on track (rule 6) with the profile's primary identity alongside.
List operations (``audience_list``) carry batches of members for list destinations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from traitsync.activation.diff import EventPlan, ListDiff, ListMember, Send, Snapshot, plan_event_sync
from traitsync.activation.ids import list_message_id, message_id, primary_identity, select_identifiers
from traitsync.activation.types import (
    ANONYMOUS_ID,
    USER_ID,
    ActivationTarget,
    ComputationRef,
    ConnectionSettings,
    Identifier,
    Message,
    ResultChange,
)
from traitsync.destinations.base import LIST_MESSAGE_TYPE
from traitsync.spec.timestamps import format_iso_ms

_DEVICE_ID_TYPES = {"ios.idfa": "ios", "android.idfa": "android"}


def iso_timestamp(ms: int) -> str:
    """ISO-8601 UTC with milliseconds, the form Segment's libraries send."""
    return format_iso_ms(ms)


def personas_context(computation: ComputationRef, space_id: str) -> dict[str, str]:
    return {"computation_class": computation.kind, "computation_id": computation.id,
            "computation_key": computation.key, "namespace": space_id, "space_id": space_id}


def integrations(destination_name: str) -> dict[str, bool]:
    return {"All": False, destination_name: True}


def _base(kind: str, computation: ComputationRef, target: ActivationTarget, *, profile_id: str,
          identifier: Identifier, profile_identifiers: Sequence[Identifier], version: int,
          timestamp_ms: int) -> tuple[Message, dict[str, Any]]:
    """The shared envelope plus the identifier's payload extras (trait name -> value)."""
    message: Message = {"type": kind}
    extras: dict[str, Any] = {}
    if identifier.type == USER_ID:
        message["userId"] = identifier.value
    elif identifier.type == ANONYMOUS_ID:
        message["anonymousId"] = identifier.value
    else:
        field, value = primary_identity(profile_identifiers, profile_id)
        message[field] = value
        if identifier.type not in _DEVICE_ID_TYPES:
            extras[identifier.type] = identifier.value
    context: dict[str, Any] = {"personas": personas_context(computation, target.space_id)}
    if identifier.type in _DEVICE_ID_TYPES:
        context["device"] = {"advertisingId": identifier.value, "type": _DEVICE_ID_TYPES[identifier.type]}
    message["context"] = context
    message["integrations"] = integrations(target.destination_name)
    message["messageId"] = ""  # set by the caller once the value is known (ids.message_id)
    message["timestamp"] = iso_timestamp(timestamp_ms)
    return message, extras


def identify_message(computation: ComputationRef, value: Any, identifier: Identifier, target: ActivationTarget, *,
                     profile_id: str, version: int, timestamp_ms: int,
                     profile_identifiers: Sequence[Identifier] = ()) -> Message:
    """``identify`` with ``traits.{key: value}`` (audiences: true/false)."""
    message, extras = _base("identify", computation, target, profile_id=profile_id, identifier=identifier,
                            profile_identifiers=profile_identifiers, version=version, timestamp_ms=timestamp_ms)
    if computation.spread:  # an SQL trait: every column is a trait (segment-spec 5.2)
        message["traits"] = {**extras, **(value if isinstance(value, dict) else {})}
    else:
        message["traits"] = {**extras, computation.key: value}
    message["messageId"] = message_id(computation.id, profile_id, identifier, version, "identify", value)
    return message


def track_message(computation: ComputationRef, value: Any, identifier: Identifier, target: ActivationTarget, *,
                  profile_id: str, version: int, timestamp_ms: int, connection: ConnectionSettings | None = None,
                  profile_identifiers: Sequence[Identifier] = ()) -> Message:
    """``track``: Trait Computed / Audience Entered / Audience Exited, names from the connection."""
    conn = connection or ConnectionSettings()
    message, extras = _base("track", computation, target, profile_id=profile_id, identifier=identifier,
                            profile_identifiers=profile_identifiers, version=version, timestamp_ms=timestamp_ms)
    if computation.kind == "audience":
        message["event"] = conn.entered_event_name if value else conn.exited_event_name
        message["properties"] = {"audience_key": computation.key, computation.key: bool(value)}
    else:
        message["event"] = conn.trait_event_name
        message["properties"] = {"trait_key": computation.key, computation.key: value}
    if extras:
        message["context"]["traits"] = extras
    message["messageId"] = message_id(computation.id, profile_id, identifier, version, "track", value)
    return message


def event_messages(change: ResultChange, sends: Sequence[Send], target: ActivationTarget,
                   connection: ConnectionSettings, *,
                   profile_identifiers: Sequence[Identifier] = ()) -> list[tuple[Message, Send]]:
    """Messages for planned sends: identify and/or track per send, as the connection asks."""
    out: list[tuple[Message, Send]] = []
    common: dict[str, Any] = {"profile_id": change.profile_id, "version": change.version,
                              "timestamp_ms": change.as_of_ms, "profile_identifiers": profile_identifiers}
    for send in sends:
        if connection.send_identify:
            out.append((identify_message(change.computation, send.value, send.identifier, target, **common), send))
        if connection.send_track:
            out.append((track_message(change.computation, send.value, send.identifier, target,
                                      connection=connection, **common), send))
    return out


def activate(change: ResultChange, snapshot: Snapshot | None, profile_identifiers: Sequence[Identifier],
             target: ActivationTarget, connection: ConnectionSettings) -> tuple[EventPlan, list[tuple[Message, Send]]]:
    """Diff, fan out and build in one call: ``(plan, [(message, send), ...])`` for one destination.

    ``snapshot`` is the destination's ``Snapshot`` (or None); ``profile_identifiers`` all
    of the profile's identifiers, oldest first. Exits go to every identifier ever sent, whatever
    ID Sync now selects.
    """
    selected = select_identifiers(profile_identifiers, id_sync=connection.id_sync,
                                  include_anonymous=connection.include_anonymous)
    plan = plan_event_sync(snapshot, change, selected, historical=connection.historical)
    return plan, event_messages(change, plan.sends, target, connection, profile_identifiers=profile_identifiers)


def group_message(computation: ComputationRef, value: Any, group_id: Identifier, target: ActivationTarget, *,
                  profile_id: str, version: int, timestamp_ms: int) -> Message:
    """``group`` for one account: ``groupId``, ``traits.{key: value}`` (audiences: true/false).

    The Tracking spec requires ``userId`` or ``anonymousId`` on every call but alias, and one
    call per account names no one user: it carries the account's own profile id (``acc_...``)
    as ``anonymousId``, stable for the account's life, never a member's id (which would change
    as members come and go, and tell the destination that user joined the group again).
    """
    message: Message = {"type": "group", "anonymousId": profile_id, "groupId": group_id.value}
    if computation.spread:
        message["traits"] = dict(value) if isinstance(value, dict) else {}
    else:
        message["traits"] = {computation.key: value}
    message["context"] = {"personas": personas_context(computation, target.space_id)}
    message["integrations"] = integrations(target.destination_name)
    message["messageId"] = message_id(computation.id, profile_id, group_id, version, "group", value)
    message["timestamp"] = iso_timestamp(timestamp_ms)
    return message


def activate_group(change: ResultChange, snapshot: Snapshot | None, group_ids: Sequence[Identifier],
                   target: ActivationTarget, connection: ConnectionSettings
                   ) -> tuple[EventPlan, list[tuple[Message, Send]]]:
    """``activate`` for ``send: [group]``: one ``group`` call per account (its ``group_id``).

    The account's ``group_id`` plays the identifier's part in the snapshot, so the rules of
    ``plan_event_sync`` hold unchanged: first sync, changes only, exits, ``historical: false``.
    """
    plan = plan_event_sync(snapshot, change, list(group_ids), historical=connection.historical)
    return plan, [(group_message(change.computation, send.value, send.identifier, target,
                                 profile_id=change.profile_id, version=change.version,
                                 timestamp_ms=change.as_of_ms), send) for send in plan.sends]


def list_message(computation: ComputationRef, action: str, batch: int, members: Sequence[ListMember],
                 target: ActivationTarget, *, sync_id: str, timestamp_ms: int) -> Message:
    """One ``audience_list`` operation: ``create`` (no members), or the ``batch``-th ``add``/``remove``
    batch of a sync run. Its id is stable for the same sync run and members, so a re-run of the same
    scheduled sync enqueues nothing new."""
    idents = [m.identifier for m in members]
    return {"type": LIST_MESSAGE_TYPE, "action": action,
            "audience": {"id": computation.id, "key": computation.key, "name": computation.name},
            "members": [{"type": i.type, "value": i.value} for i in idents],
            "context": {"personas": personas_context(computation, target.space_id)},
            "integrations": integrations(target.destination_name),
            "messageId": list_message_id(computation.id, target.destination_id, sync_id, action, batch, idents),
            "timestamp": iso_timestamp(timestamp_ms)}


def list_messages(computation: ComputationRef, diff: ListDiff, target: ActivationTarget, *, sync_id: str,
                  timestamp_ms: int, batch_size: int) -> list[Message]:
    """Every operation of a planned ``ListDiff`` in order: create (if new), then removes, then adds,
    in batches of at most ``batch_size`` members. (The scheduler streams batches from SQL instead;
    this form serves small diffs planned in memory.)"""
    out: list[Message] = []
    common: dict[str, Any] = {"sync_id": sync_id, "timestamp_ms": timestamp_ms}
    if diff.create:
        out.append(list_message(computation, "create", 0, (), target, **common))
    size = max(1, batch_size)
    for action, members in (("remove", diff.removes), ("add", diff.adds)):
        for batch, start in enumerate(range(0, len(members), size)):
            out.append(list_message(computation, action, batch, members[start:start + size], target, **common))
    return out
