"""Tables of the realtime engine: definitions' status, per-(profile, computation) state, the
due-time index, current values, and the stream of computation results activation consumes."""

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
    Index("ix_computation_results_profile", "profile_id", "computation_key"),
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

#: The engine's exact state per (profile, computation): a compact JSON document (see docs/engine.md).
compute_state = Table(
    "compute_state",
    metadata,
    Column("profile_id", String(64), nullable=False),
    Column("computation_key", String(200), nullable=False),
    Column("state", Text, nullable=False),
    PrimaryKeyConstraint("profile_id", "computation_key", name="pk_compute_state"),
)

#: The due-time index: when each (profile, computation) next changes with no new event.
compute_due = Table(
    "compute_due",
    metadata,
    Column("profile_id", String(64), nullable=False),
    Column("computation_key", String(200), nullable=False),
    Column("due_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("profile_id", "computation_key", name="pk_compute_due"),
    Index("ix_compute_due_at", "due_at_ms"),
)

COMPUTE_TABLES = (computations, compute_state, compute_due, computed_values, computation_results)
