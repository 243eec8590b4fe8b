"""Identity graph and profile store (owned by identity/ and profiles/).

Revision ID: 0002_identity
Revises: 0001_event_log
"""

from __future__ import annotations

revision = "0002_identity"
down_revision = "0001_event_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the stage that owns these tables."""


def downgrade() -> None:
    """Filled in by the stage that owns these tables."""
