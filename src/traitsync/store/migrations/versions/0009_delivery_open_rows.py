"""Partial indexes over unfinished outbox rows, so claims do not read delivered history.

With 100,000 delivered rows and nothing pending, a claim on SQLite read the whole destination
(80-130 ms while holding the write lock). Claims, due times and the per-profile order check now
read only rows that are not terminal.

Revision ID: 0009_delivery_open_rows
Revises: 0008_delivery_platform
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_delivery_open_rows"
down_revision = "0008_delivery_platform"
branch_labels = None
depends_on = None

from traitsync.store.tables.delivery import OPEN_ROWS_SQL  # noqa: E402


def _indexes() -> set[str]:
    return {str(i["name"]) for i in sa.inspect(op.get_bind()).get_indexes("delivery_outbox")}


def upgrade() -> None:
    existing = _indexes()  # a fresh store gets them from the table definitions
    if "ix_delivery_outbox_open" not in existing:
        op.create_index("ix_delivery_outbox_open", "delivery_outbox", ["destination_id", "id"],
                        sqlite_where=sa.text(OPEN_ROWS_SQL["sqlite"]),
                        postgresql_where=sa.text(OPEN_ROWS_SQL["postgresql"]))
    if "ix_delivery_outbox_open_key" not in existing:
        op.create_index("ix_delivery_outbox_open_key", "delivery_outbox", ["destination_id", "order_key", "id"],
                        sqlite_where=sa.text(OPEN_ROWS_SQL["sqlite"]),
                        postgresql_where=sa.text(OPEN_ROWS_SQL["postgresql"]))


def downgrade() -> None:
    op.drop_index("ix_delivery_outbox_open_key", "delivery_outbox")
    op.drop_index("ix_delivery_outbox_open", "delivery_outbox")
