"""Drop ``ix_computation_results_profile``: nothing reads results by profile.

``computation_results`` is read in offset order only (activation, ``ComputationResults``); the
(profile_id, computation_key) index was maintained on every one of the engine's result rows
(~4 per event) for no reader, and cost ~7% of the engine's CPU (docs/benchmarks.md).

Revision ID: 0010_drop_results_profile_index
Revises: 0009_delivery_open_rows
"""

from __future__ import annotations

from alembic import op

revision = "0010_drop_results_profile_index"
down_revision = "0009_delivery_open_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0003 creates the tables from the current metadata, which no longer has the index: a store
    # made after this change never had it.
    op.execute("DROP INDEX IF EXISTS ix_computation_results_profile")


def downgrade() -> None:
    op.create_index("ix_computation_results_profile", "computation_results", ["profile_id", "computation_key"])
