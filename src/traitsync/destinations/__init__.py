"""Destination adapters: one module per vendor, the shared interface and the registry.

This package is the bottom of the activation seam: it imports nothing from ``delivery`` or
``activation``; delivery runs its adapters and activation builds the messages they receive.
"""

from traitsync.destinations.auth import Token, TokenAuth, TokenRejected
from traitsync.destinations.base import (
    LIST_MESSAGE_TYPE,
    Destination,
    DestinationSettings,
    Exchange,
    Item,
    Message,
    Outcome,
    Previous,
    Request,
    Response,
    classify_by_status,
    items_of,
    outcomes_by_index,
    parse_retry_after,
    run_exchange,
    status_outcome,
)
from traitsync.destinations.registry import (
    ADAPTERS,
    VENDOR_RATES,
    RateCap,
    default_rate,
    get_destination,
    vendor_rate,
)

__all__ = ["ADAPTERS", "LIST_MESSAGE_TYPE", "VENDOR_RATES", "Destination", "DestinationSettings", "Exchange", "Item",
           "Message", "Outcome", "Previous", "RateCap", "Request", "Response", "Token", "TokenAuth", "TokenRejected",
           "classify_by_status", "default_rate", "get_destination", "items_of", "outcomes_by_index",
           "parse_retry_after", "run_exchange", "status_outcome", "vendor_rate"]
