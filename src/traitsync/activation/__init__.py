"""Activation: diff results against what each destination holds and build Engage payloads.

The pure parts live here (``diff``, ``ids``, ``payloads``, ``types``); they never touch the
database, so they are tested field for field against the seeds' payloads.
"""

from traitsync.activation.diff import (
    EventPlan,
    ListDiff,
    ListMember,
    Send,
    Snapshot,
    confirm,
    plan_event_sync,
    plan_list_sync,
)
from traitsync.activation.ids import list_message_id, message_id, select_identifiers, validate_id_sync
from traitsync.activation.payloads import (
    activate,
    event_messages,
    identify_message,
    list_messages,
    track_message,
)
from traitsync.activation.types import (
    ActivationTarget,
    ComputationRef,
    ConnectionSettings,
    Identifier,
    ResultChange,
)

__all__ = ["ActivationTarget", "ComputationRef", "ConnectionSettings", "EventPlan", "Identifier", "ListDiff",
           "ListMember", "ResultChange", "Send", "Snapshot", "activate", "confirm", "event_messages",
           "identify_message", "list_message_id", "list_messages", "message_id", "plan_event_sync",
           "plan_list_sync", "select_identifiers", "track_message", "validate_id_sync"]
