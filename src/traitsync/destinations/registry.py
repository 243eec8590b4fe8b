"""``kind:`` name -> adapter, and the per-vendor request caps Engage applies.

Adding a vendor is one module in ``destinations/vendors/`` exporting ``DESTINATION``: the
registry imports every module there (so two vendors never edit the same file). ``VENDOR_RATES`` is the table
from the seeds ("Rate limits on Engage Event Destinations"), keyed by catalog display name;
it is the default limiter rate for an adapter of that vendor and what we cap at when a user
points the generic adapters at that vendor's API.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

from traitsync.destinations import jsonl, segment, vendors, webhook
from traitsync.destinations.base import Destination
from traitsync.errors import ConfigError


def _vendor_adapters() -> dict[str, Destination[Any]]:
    found: dict[str, Destination[Any]] = {}
    for info in sorted(pkgutil.iter_modules(vendors.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{vendors.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Destination) and value.slug not in found:
                found[value.slug] = value
    return found


ADAPTERS: dict[str, Destination[Any]] = {
    "webhook": webhook.DESTINATION,
    "segment": segment.DESTINATION,
    "jsonl": jsonl.DESTINATION,
    **_vendor_adapters(),
}


@dataclass(frozen=True)
class RateCap:
    """Requests per second, and how many calls one object costs (HubSpot sends 2 per object)."""

    per_second: float
    calls_per_object: int = 1

    @property
    def requests_per_second(self) -> float:
        return self.per_second * self.calls_per_object


VENDOR_RATES: dict[str, RateCap] = {
    "Braze": RateCap(100),
    "Customer.io": RateCap(30),
    "Hubspot": RateCap(5, calls_per_object=2),
    "Intercom": RateCap(8),
    "Iterable": RateCap(500),
    "Mailchimp": RateCap(10),
    "Marketo": RateCap(5),
    "Marketo Static Lists": RateCap(5),
    "Pardot": RateCap(2),
    "Resci": RateCap(200),
    "Responsys": RateCap(3),
    "Responsys Batch": RateCap(3),
    "Sendgrid": RateCap(100),
    "Sendgrid Lists": RateCap(100),
    "Salesforce": RateCap(5),
    "Salesforce Marketing Cloud": RateCap(20),
    "Salesforce Marketing Cloud Lists": RateCap(20),
    "Zendesk": RateCap(50),
}

_RATES_FOLDED = {name.casefold(): cap for name, cap in VENDOR_RATES.items()}


def get_destination(kind: str) -> Destination[Any]:
    """The adapter registered as ``kind``; unknown names are a config error listing the known ones."""
    try:
        return ADAPTERS[kind]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(f"unknown destination kind {kind!r}; known kinds: {known}", key="kind") from None


def vendor_rate(name: str) -> RateCap | None:
    """The seeds' cap for a vendor display name (case-insensitive), if it has one."""
    return _RATES_FOLDED.get(name.casefold())


def default_rate(destination: Destination[Any]) -> float:
    """Requests/second the limiter uses unless a destination config overrides it."""
    cap = vendor_rate(destination.name)
    return cap.requests_per_second if cap is not None else destination.default_rate
