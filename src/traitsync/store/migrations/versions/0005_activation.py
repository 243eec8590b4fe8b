"""Activation bookkeeping: connection first syncs and list destination state.

Revision ID: 0005_activation
Revises: 0004_delivery
"""

from __future__ import annotations

from alembic import op

from traitsync.store.tables.activation import ACTIVATION_TABLES

revision = "0005_activation"
down_revision = "0004_delivery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in ACTIVATION_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(ACTIVATION_TABLES):
        table.drop(bind, checkfirst=True)
