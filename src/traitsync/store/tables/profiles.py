"""Tables of the profile store: profiles and their metadata, external ids, traits, the resolved
events index, user-account links and the durable stream of profile changes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, PrimaryKeyConstraint, String, Table, Text, text

from traitsync.store.tables import BigId, metadata

profiles = Table(
    "profiles",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("collection", String(16), nullable=False),
    # Age for "the oldest profile survives": the log offset of the creating event.
    Column("created_offset", BigInteger, nullable=False),
    Column("merged_into", String(64)),
    Column("merge_count", Integer, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("first_message_id", String(100), nullable=False),
    Column("first_source_id", String(200), nullable=False),
    Column("last_message_id", String(100), nullable=False),
    Column("last_source_id", String(200), nullable=False),
    Index("ix_profiles_merged_into", "merged_into"),
)

profile_external_ids = Table(
    "profile_external_ids",
    metadata,
    Column("id_type", String(200), nullable=False),
    Column("value", Text, nullable=False),
    Column("collection", String(16), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("first_message_id", String(100), nullable=False),
    Column("event_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("id_type", "value", "collection", name="pk_profile_external_ids"),
    Index("ix_profile_external_ids_profile", "profile_id"),
)

profile_traits = Table(
    "profile_traits",
    metadata,
    Column("profile_id", String(64), nullable=False),
    Column("key", Text, nullable=False),
    # JSON text; NULL is a tombstone (the trait was deleted) kept so merges compare times.
    Column("value", Text),
    Column("source_id", String(200), nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("event_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("profile_id", "key", name="pk_profile_traits"),
)

profile_events = Table(
    "profile_events",
    metadata,
    Column("offset", BigInteger, primary_key=True),
    # The profile at processing time (like Segment's event tables); NULL when unresolved.
    Column("profile_id", String(64)),
    Column("account_id", String(64)),
    Column("type", String(16), nullable=False),
    Column("event", Text),
    Column("timestamp_ms", BigInteger, nullable=False),
    # JSON list of [collection, type, value] promoted from this event.
    Column("external_ids", Text, nullable=False),
    Index("ix_profile_events_profile_time", "profile_id", "timestamp_ms"),
    # Partial: most events have no account, and an index entry per event costs ingest speed.
    Index("ix_profile_events_account_time", "account_id", "timestamp_ms",
          sqlite_where=text("account_id IS NOT NULL"), postgresql_where=text("account_id IS NOT NULL")),
)

profile_links = Table(
    "profile_links",
    metadata,
    Column("user_profile_id", String(64), nullable=False),
    Column("account_profile_id", String(64), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("first_message_id", String(100), nullable=False),
    PrimaryKeyConstraint("user_profile_id", "account_profile_id", name="pk_profile_links"),
    Index("ix_profile_links_account", "account_profile_id"),
)

profile_changes = Table(
    "profile_changes",
    metadata,
    Column("offset", BigId, primary_key=True, autoincrement=True),
    # identifier_added | identifier_removed | merged | traits_changed
    Column("kind", String(32), nullable=False),
    Column("collection", String(16), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("other_profile_id", String(64)),
    Column("id_type", String(200)),
    Column("value", Text),
    Column("trait_keys", Text),
    Column("event_offset", BigInteger),
    Column("message_id", String(100)),
    Column("at_ms", BigInteger, nullable=False),
)

PROFILE_TABLES = (profiles, profile_external_ids, profile_traits, profile_events, profile_links,
                  profile_changes)
