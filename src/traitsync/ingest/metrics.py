"""Prometheus metrics of ingestion, on a registry per app so several apps can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("traitsync_ingest_requests_total", "Tracking API requests by route and status",
                                ["route", "status"], registry=registry)
        self.accepted = Counter("traitsync_events_accepted_total", "Events stored in the log",
                                ["source"], registry=registry)
        self.duplicates = Counter("traitsync_events_duplicate_total",
                                  "Events ignored because their messageId was already stored",
                                  ["source"], registry=registry)
        self.rejected = Counter("traitsync_events_rejected_total", "Events refused at ingest, by code",
                                ["source", "code"], registry=registry)
        self.append_latency = Histogram(
            "traitsync_log_append_seconds", "Time from handing events to the writer to their commit",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry)
