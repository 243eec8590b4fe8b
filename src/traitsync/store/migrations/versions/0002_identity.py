"""Identity graph and profile store (owned by identity/ and profiles/).

Revision ID: 0002_identity
Revises: 0001_event_log
"""

from __future__ import annotations

from alembic import op

from traitsync.store.tables.identity import IDENTITY_TABLES
from traitsync.store.tables.profiles import PROFILE_TABLES

revision = "0002_identity"
down_revision = "0001_event_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in (*PROFILE_TABLES, *IDENTITY_TABLES):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed((*PROFILE_TABLES, *IDENTITY_TABLES)):
        table.drop(bind, checkfirst=True)
