"""Activation snapshots, outbox and delivery stats (owned by activation/ and delivery/).

Revision ID: 0004_delivery
Revises: 0003_compute
"""

from __future__ import annotations

from alembic import op

from traitsync.store.tables.delivery import ALL_TABLES

revision = "0004_delivery"
down_revision = "0003_compute"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in ALL_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(ALL_TABLES):
        table.drop(bind, checkfirst=True)
