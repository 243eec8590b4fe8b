"""Computation state, due-time index and results (owned by compute/).

Revision ID: 0003_compute
Revises: 0002_identity
"""

from __future__ import annotations

revision = "0003_compute"
down_revision = "0002_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the stage that owns these tables."""


def downgrade() -> None:
    """Filled in by the stage that owns these tables."""
