"""List destinations: why a new list is held back (the audience below the vendor's minimum size).

Revision ID: 0011_list_holds
Revises: 0010_drop_results_profile_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_list_holds"
down_revision = "0010_drop_results_profile_index"
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("activation_lists")}


def upgrade() -> None:
    # 0005 creates activation_lists from the current metadata: a store made after this change
    # already has the columns.
    have = _columns()
    if "held_reason" not in have:
        op.add_column("activation_lists", sa.Column("held_reason", sa.Text()))
    if "member_count" not in have:
        op.add_column("activation_lists", sa.Column("member_count", sa.BigInteger()))


def downgrade() -> None:
    with op.batch_alter_table("activation_lists") as batch:
        batch.drop_column("member_count")
        batch.drop_column("held_reason")
