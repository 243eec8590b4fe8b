"""Delivery platform: adapter inputs, confirmation as data, per-request logs, shared limits.

Adds ``delivery_outbox.adapter_input`` and ``applied`` (delivered rows activation has folded),
``delivery_attempts.requests`` and the ``delivery_destination_state`` table. Rows delivered
before the upgrade were already folded by the old in-transaction hook, so they start applied.

Revision ID: 0008_delivery_platform
Revises: 0007_engine_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from traitsync.store.tables.delivery import PLATFORM_TABLES

revision = "0008_delivery_platform"
down_revision = "0007_engine_state"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    # 0004 creates tables from the current definitions, so a fresh store already has these.
    outbox = _columns("delivery_outbox")
    if "adapter_input" not in outbox:
        op.add_column("delivery_outbox", sa.Column("adapter_input", sa.Text))
    if "applied" not in outbox:
        op.add_column("delivery_outbox", sa.Column("applied", sa.Boolean, nullable=False,
                                                   server_default=sa.text("false")))
        op.execute("UPDATE delivery_outbox SET applied = true WHERE state = 'delivered'")
        op.create_index("ix_delivery_outbox_unapplied", "delivery_outbox", ["applied", "state", "id"])
    if "requests" not in _columns("delivery_attempts"):
        op.add_column("delivery_attempts", sa.Column("requests", sa.Text))
    bind = op.get_bind()
    for table in PLATFORM_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(PLATFORM_TABLES):
        table.drop(bind, checkfirst=True)
    op.drop_column("delivery_attempts", "requests")
    op.drop_index("ix_delivery_outbox_unapplied", "delivery_outbox")
    op.drop_column("delivery_outbox", "applied")
    op.drop_column("delivery_outbox", "adapter_input")
