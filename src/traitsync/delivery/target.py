"""One destination as delivery runs it: adapter, settings, cap, concurrency, mappings, filters.

Built once from the resolved config (``destinations.config.ResolvedDestination``) by whoever
composes the stages, and handed to the ``DestinationWorker``; delivery never reads the config
document itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from traitsync.destinations.base import Destination, DestinationSettings
from traitsync.destinations.config import ResolvedDestination
from traitsync.destinations.mappings import DestinationFilter
from traitsync.destinations.registry import default_rate

#: The vendor answer time the default concurrency plans for: real APIs answer in 100-500 ms.
PLANNED_LATENCY_S = 0.5
MIN_CONCURRENCY = 4
MAX_CONCURRENCY = 256


def default_concurrency(rate: float, batch_requests: int = 1) -> int:
    """Enough requests in flight to reach ``rate`` when each answer takes ``PLANNED_LATENCY_S``.

    ``batch_requests`` is how many requests one exchange makes in a row (a lookup then a write).
    """
    wanted = math.ceil(rate * PLANNED_LATENCY_S * max(1, batch_requests))
    return max(MIN_CONCURRENCY, min(MAX_CONCURRENCY, wanted))


@dataclass(frozen=True)
class DeliveryTarget:
    destination_id: str
    name: str
    adapter: Destination[Any]
    settings: DestinationSettings
    rate: float
    concurrency: int
    batch_size: int
    timeout_s: float
    mappings: Mapping[str, Any] = field(default_factory=dict)
    filters: tuple[DestinationFilter, ...] = ()

    @classmethod
    def of(cls, resolved: ResolvedDestination) -> DeliveryTarget:
        config = resolved.config
        adapter = resolved.adapter
        rate = config.rate_limit if config.rate_limit is not None else default_rate(adapter)
        return cls(destination_id=config.id, name=resolved.display_name, adapter=adapter,
                   settings=resolved.settings, rate=rate,
                   concurrency=config.concurrency or default_concurrency(rate),
                   batch_size=min(config.batch_size or adapter.max_batch, adapter.max_batch)
                   if "event" in adapter.modes else adapter.max_batch,
                   timeout_s=adapter.timeout_s, mappings=dict(resolved.mappings), filters=tuple(config.filters))

    @classmethod
    def simple(cls, destination_id: str, adapter: Destination[Any], settings: DestinationSettings, *,
               rate: float | None = None, concurrency: int | None = None, batch_size: int | None = None,
               timeout_s: float | None = None, mappings: Mapping[str, Any] | None = None,
               filters: tuple[DestinationFilter, ...] = (), name: str | None = None) -> DeliveryTarget:
        """A target built in code (tests, benchmarks)."""
        cap = rate if rate is not None else default_rate(adapter)
        return cls(destination_id=destination_id, name=name or adapter.name, adapter=adapter, settings=settings,
                   rate=cap, concurrency=concurrency or default_concurrency(cap),
                   batch_size=batch_size or adapter.max_batch, timeout_s=timeout_s or adapter.timeout_s,
                   mappings=dict(mappings if mappings is not None else adapter.default_mappings), filters=filters)
