"""``computation_snapshots``: batch results at a past moment, kept apart from live results.

Revision ID: 0013_computation_snapshots
Revises: 0012_privacy_access
"""

from __future__ import annotations

from alembic import op

from traitsync.store.tables.compute import BATCH_TABLES

revision = "0013_computation_snapshots"
down_revision = "0012_privacy_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in BATCH_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(BATCH_TABLES):
        table.drop(bind, checkfirst=True)
