"""Activation snapshots, outbox and delivery stats (owned by activation/ and delivery/).

Revision ID: 0004_delivery
Revises: 0003_compute
"""

from __future__ import annotations

revision = "0004_delivery"
down_revision = "0003_compute"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the stage that owns these tables."""


def downgrade() -> None:
    """Filled in by the stage that owns these tables."""
