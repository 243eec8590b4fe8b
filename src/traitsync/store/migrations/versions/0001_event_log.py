"""Event log: events, rejections, checkpoints.

Revision ID: 0001_event_log
Revises:
"""

from __future__ import annotations

from alembic import op

from traitsync.store.tables.log import checkpoints, events, rejections

revision = "0001_event_log"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in (events, rejections, checkpoints):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (checkpoints, rejections, events):
        table.drop(bind, checkfirst=True)
