"""The event log: append-only, ordered by offset, deduplicated on messageId."""

from traitsync.log.event_log import AppendResult, Checkpoints, EventLog, SourceBatch, row_to_event

__all__ = ["AppendResult", "Checkpoints", "EventLog", "SourceBatch", "row_to_event"]
