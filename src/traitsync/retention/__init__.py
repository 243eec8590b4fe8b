"""Retention: operational tables do not grow forever (``RetentionWorker``, ``table_sizes``)."""

from traitsync.retention.sizes import table_sizes
from traitsync.retention.worker import RetentionWorker, purge

__all__ = ["RetentionWorker", "purge", "table_sizes"]
