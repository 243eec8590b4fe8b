"""The realtime engine: incremental, exact Computed Traits and Audiences, with exits in time.

Public API: :class:`RealtimeEngine`, the readers (:class:`ComputationResults`,
:func:`current_values`, :func:`preview`), the Profile API hook
(:func:`computed_traits_provider`), :func:`computations_router`, and journeys' read side
(:func:`journey_report`, :func:`journeys_router`).
"""

from traitsync.compute.realtime.api import computations_router
from traitsync.compute.realtime.engine import RealtimeEngine
from traitsync.compute.realtime.journey_report import journey_report, journeys_router
from traitsync.compute.realtime.results import (
    ComputationResult,
    ComputationResults,
    computation_summaries,
    computed_traits_provider,
    current_values,
    preview,
)
from traitsync.compute.realtime.store import CHANGES_CONSUMER, CONSUMER

__all__ = ["CHANGES_CONSUMER", "CONSUMER", "ComputationResult", "ComputationResults", "RealtimeEngine",
           "computation_summaries", "computations_router", "computed_traits_provider", "current_values",
           "journey_report", "journeys_router", "preview"]
