"""Ingestion: the Tracking API routes and file importers, appending to the event log."""

from traitsync.ingest.appender import Appender
from traitsync.ingest.auth import SourceDirectory, write_key_from_header
from traitsync.ingest.tracking_api import TrackingApi

__all__ = ["Appender", "SourceDirectory", "TrackingApi", "write_key_from_header"]
