"""Tables of the identity graph's history: merges, the audit trail and worker bookkeeping.

The graph itself (which identifier points at which profile) lives in ``profiles.py`` as
``profile_external_ids`` because the Profile API serves it as-is; this module holds what
explains the graph: every merge, demotion, violation and deletion with its triggering message.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from traitsync.store.tables import BigId, metadata

identity_merges = Table(
    "identity_merges",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("survivor_id", String(64), nullable=False),
    Column("absorbed_id", String(64), nullable=False),
    Column("event_offset", BigInteger, nullable=False),
    Column("message_id", String(100), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_identity_merges_survivor", "survivor_id"),
    Index("ix_identity_merges_absorbed", "absorbed_id"),
)

identity_audit = Table(
    "identity_audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_offset", BigInteger),
    Column("message_id", String(100)),
    Column("source_id", String(200)),
    Column("at_ms", BigInteger, nullable=False),
    # created | merged | demoted | violation | identifier_deleted
    Column("action", String(32), nullable=False),
    # Segment's Insights category for violations ("Identifier value limit exceeded", ...)
    Column("category", String(64)),
    Column("collection", String(16)),
    Column("profile_id", String(64)),
    Column("other_profile_id", String(64)),
    Column("id_type", String(200)),
    Column("value", Text),
    Column("detail", Text),
    Index("ix_identity_audit_profile", "profile_id"),
    Index("ix_identity_audit_category", "category"),
    Index("ix_identity_audit_value", "id_type", "value"),
)

identity_meta = Table(
    "identity_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

IDENTITY_TABLES = (identity_merges, identity_audit, identity_meta)
