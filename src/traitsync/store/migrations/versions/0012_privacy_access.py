"""Privacy and access: regulations, suppressions and management tokens.

Revision ID: 0012_privacy_access
Revises: 0011_list_holds
"""

from __future__ import annotations

from alembic import op

from traitsync.store.tables.privacy import PRIVACY_TABLES

revision = "0012_privacy_access"
down_revision = "0011_list_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in PRIVACY_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(PRIVACY_TABLES):
        table.drop(bind, checkfirst=True)
