"""Computation state, due-time index and results (owned by compute/).

Revision ID: 0003_compute
Revises: 0002_identity
"""

from __future__ import annotations

from alembic import op

from traitsync.store.tables.compute import COMPUTE_TABLES

revision = "0003_compute"
down_revision = "0002_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in COMPUTE_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(COMPUTE_TABLES):
        table.drop(bind, checkfirst=True)
