"""Value types activation works on; plain frozen dataclasses so the pure functions stay pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

# One meaning everywhere: a Segment message as a JSON object (re-exported for activation).
from traitsync.destinations.base import Message as Message

ComputationKind = Literal["trait", "audience"]
#: ``user``: results are keyed by user profiles; ``account``: by ``acc_`` account profiles.
ComputationLevel = Literal["user", "account"]
IdStrategy = Literal["first", "last", "all"]

# Why a result changed (``ResultChange.cause``). ``backfill`` is the first computation of a new
# computation or a destination's first sync: it is the only cause ``historical: false`` skips.
CAUSE_EVENT: Final = "event"
CAUSE_TIME: Final = "time"
CAUSE_MERGE: Final = "merge"
CAUSE_IDENTIFIER: Final = "identifier_added"
CAUSE_BACKFILL: Final = "backfill"

# Segment's default external id types (segment-spec 2.2); others need ID Sync to be sent.
USER_ID: Final = "user_id"
#: The identifier of an account profile: what a ``group`` call's ``groupId`` carries.
GROUP_ID: Final = "group_id"
EMAIL: Final = "email"
ANONYMOUS_ID: Final = "anonymous_id"


@dataclass(frozen=True)
class ComputationRef:
    """A computed trait or audience as payloads name it: ``id`` (tra_/aud_), profile ``key``, name."""

    id: str
    key: str
    kind: ComputationKind
    name: str
    #: An SQL trait: its value is an object of columns, sent as that many traits in one identify.
    spread: bool = False
    #: Account-level computations are sent as ``group`` calls and/or per member user.
    level: ComputationLevel = "user"


@dataclass(frozen=True, order=True)
class Identifier:
    """One external id value on a profile (``type`` as Segment names it: user_id, email, ...)."""

    type: str
    value: str


@dataclass(frozen=True)
class ResultChange:
    """A (profile, computation) result moved from ``old_value`` to ``new_value`` at ``version``.

    Audiences carry booleans (membership); traits any JSON value, ``None`` meaning "no value".
    ``version`` increases with every change of the result and feeds the stable ``messageId``.
    """

    profile_id: str
    computation: ComputationRef
    old_value: Any
    new_value: Any
    version: int
    as_of_ms: int
    cause: str = CAUSE_EVENT


@dataclass(frozen=True)
class ConnectionSettings:
    """One computation -> destination connection (DESIGN 4.1 ``connections``; segment-spec 5.6)."""

    send_identify: bool = True
    send_track: bool = False
    #: Account-level computations only: one ``group`` call per account. On an account computation,
    #: ``send_identify`` / ``send_track`` mean one call per member user of the account.
    send_group: bool = False
    trait_event_name: str = "Trait Computed"
    entered_event_name: str = "Audience Entered"
    exited_event_name: str = "Audience Exited"
    id_sync: Mapping[str, IdStrategy] | None = None
    include_anonymous: bool = False
    historical: bool = True


@dataclass(frozen=True)
class ActivationTarget:
    """Where messages go: the destination instance and the names its payloads carry.

    ``destination_name`` is the key in the ``integrations`` object (the display name).
    """

    destination_id: str
    destination_name: str
    space_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)
