"""Tables of the event log: the accepted events, ingest rejections and consumer checkpoints."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from traitsync.store.tables import BigId, metadata

events = Table(
    "events",
    metadata,
    Column("offset", BigId, primary_key=True, autoincrement=True),
    # The unique index is the dedup: a repeated messageId is ignored for as long as the log
    # keeps the first one (forever, which is more than Segment's 24 hours).
    Column("message_id", String(100), nullable=False, unique=True),
    Column("source_id", String(200), nullable=False),
    Column("type", String(16), nullable=False),
    Column("event", Text),
    Column("user_id", Text),
    Column("anonymous_id", Text),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

rejections = Table(
    "rejections",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source_id", String(200), nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("code", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("message_id", Text),
    Column("batch_index", Integer),
    Column("body", Text),
    Index("ix_rejections_source_time", "source_id", "received_at_ms"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("offset", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)
