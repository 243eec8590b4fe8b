"""Destination adapters: one module per vendor, the shared interface and the registry."""

from traitsync.destinations.base import (
    LIST_MESSAGE_TYPE,
    Destination,
    DestinationSettings,
    Message,
    Outcome,
    Request,
    Response,
    classify_by_status,
    parse_retry_after,
)
from traitsync.destinations.registry import (
    ADAPTERS,
    VENDOR_RATES,
    RateCap,
    default_rate,
    get_destination,
    vendor_rate,
)

__all__ = ["ADAPTERS", "LIST_MESSAGE_TYPE", "VENDOR_RATES", "Destination", "DestinationSettings", "Message",
           "Outcome", "RateCap", "Request", "Response", "classify_by_status", "default_rate",
           "get_destination", "parse_retry_after", "vendor_rate"]
