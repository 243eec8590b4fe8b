"""Tables of the realtime engine: definitions' status, per-profile state, the due-time index,
current values, and the stream of computation results activation consumes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table, Text

from traitsync.store.tables import BigId, metadata

#: THE contract with activation: one row per change of value, in ``offset`` order.
computation_results = Table(
    "computation_results",
    metadata,
    Column("offset", BigId, primary_key=True, autoincrement=True),
    Column("computation_key", String(200), nullable=False),
    Column("computation_id", String(64), nullable=False),
    Column("computation_class", String(16), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("version", BigInteger, nullable=False),
    Column("as_of_ms", BigInteger, nullable=False),
    Column("cause", String(120), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
)

#: Current values (Profile API, preview); audiences keep only rows that were ever true.
computed_values = Table(
    "computed_values",
    metadata,
    Column("profile_id", String(64), nullable=False),
    Column("computation_key", String(200), nullable=False),
    Column("value", Text),
    Column("version", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("profile_id", "computation_key", name="pk_computed_values"),
    Index("ix_computed_values_key", "computation_key"),
)

#: One row per definition the engine knows, with the hash that tells a changed definition.
computations = Table(
    "computations",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("id", String(64), nullable=False),
    Column("class", String(16), nullable=False),
    Column("definition_hash", String(64), nullable=False),
    # Backfilling | Computing | Live | Failed
    Column("status", String(16), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("last_change_at_ms", BigInteger),
    # Resumable backfill: the last canonical profile id done (NULL = not started / finished).
    Column("backfill_cursor", String(64)),
    Column("error", Text),
)

#: The engine's exact state, ONE row per profile: a compact JSON document holding the profile's
#: event records (each kept once, shared by the computations reading it) and, per computation,
#: value, version, due time and running aggregate (see docs/engine.md). One row instead of one per
#: (profile, computation) because row writes were most of the engine's cost.
compute_profile_state = Table(
    "compute_profile_state",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("state", Text, nullable=False),
)

#: The due-time index, ONE row per profile: the earliest moment any of its computations next
#: changes with no new event (which ones is in the state document).
compute_profile_due = Table(
    "compute_profile_due",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("due_at_ms", BigInteger, nullable=False),
    Index("ix_compute_profile_due_at", "due_at_ms"),
)

COMPUTE_TABLES = (computations, compute_profile_state, compute_profile_due, computed_values, computation_results)

#: Point-in-time results of ``traitsync compute --as-of`` (batch engines): who had which value at
#: ``as_of_ms``. Activation never reads it, so looking at the past never sends anything.
computation_snapshots = Table(
    "computation_snapshots",
    metadata,
    Column("as_of_ms", BigInteger, nullable=False),
    Column("computation_key", String(200), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("value", Text),
    Column("computed_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("as_of_ms", "computation_key", "profile_id", name="pk_computation_snapshots"),
    Index("ix_computation_snapshots_key", "computation_key", "as_of_ms"),
)

BATCH_TABLES = (computation_snapshots,)
