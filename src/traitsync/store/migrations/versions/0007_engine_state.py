"""Realtime engine state: one row per profile instead of one per (profile, computation).

The engine wrote ~7 state rows and as many due rows per event, each state copying the same
event record; it now keeps one JSON document and one due row per profile (see docs/engine.md).
Existing states are converted, not dropped, so an upgraded engine carries on exactly where it
stopped: per computation, value / version / aggregate / due move into the document; the records
of every computation are merged by (timestamp, offset), keeping the union of their properties.

Revision ID: 0007_engine_state
Revises: 0005_activation
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from traitsync.store.tables.compute import compute_profile_due, compute_profile_state

revision = "0007_engine_state"
down_revision = "0005_activation"
branch_labels = None
depends_on = None

_OLD_STATE = ("compute_state", sa.Column("profile_id", sa.String(64), nullable=False),
              sa.Column("computation_key", sa.String(200), nullable=False),
              sa.Column("state", sa.Text, nullable=False),
              sa.PrimaryKeyConstraint("profile_id", "computation_key", name="pk_compute_state"))
_OLD_DUE = ("compute_due", sa.Column("profile_id", sa.String(64), nullable=False),
            sa.Column("computation_key", sa.String(200), nullable=False),
            sa.Column("due_at_ms", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("profile_id", "computation_key", name="pk_compute_due"))


def _convert(rows: list[tuple[str, str]]) -> tuple[bytes, int | None]:
    """One profile's old per-computation states -> the new document and its earliest due time."""
    by_name: dict[str, dict[tuple[int, int], list[Any]]] = {}
    states: dict[str, list[Any]] = {}
    for key, text in rows:
        d = orjson.loads(text)
        states[key] = [d["v"], d["n"], d["a"], d["d"]]
        for rec in d["r"]:
            kept = by_name.setdefault(rec[4], {})
            have = kept.get((rec[0], rec[1]))
            if have is None:
                kept[(rec[0], rec[1])] = [*rec[:5], dict(rec[5]), rec[6]]
            else:
                have[5].update(rec[5])
                have[6] = have[6] or rec[6]
    records = {name: [kept[k] for k in sorted(kept)] for name, kept in by_name.items()}
    due = min((s[3] for s in states.values() if s[3] is not None), default=None)
    return orjson.dumps({"r": records, "s": states, "d": due}), due


def upgrade() -> None:
    bind = op.get_bind()
    compute_profile_state.create(bind, checkfirst=True)
    compute_profile_due.create(bind, checkfirst=True)
    if not sa.inspect(bind).has_table("compute_state"):
        return
    rows = bind.execute(sa.text("SELECT profile_id, computation_key, state FROM compute_state "
                                "ORDER BY profile_id")).fetchall()
    by_profile: dict[str, list[tuple[str, str]]] = {}
    for pid, key, text in rows:
        by_profile.setdefault(str(pid), []).append((str(key), str(text)))
    for pid, states in by_profile.items():
        doc, due = _convert(states)
        bind.execute(compute_profile_state.insert().values(profile_id=pid, state=doc.decode()))
        if due is not None:
            bind.execute(compute_profile_due.insert().values(profile_id=pid, due_at_ms=due))
    op.drop_table("compute_due")
    op.drop_table("compute_state")


def downgrade() -> None:
    """The old tables come back empty: the engine's state must then be rebuilt (a changed definition's
    backfill) or the engine restarted from checkpoint 0."""
    op.create_table(*_OLD_STATE)
    op.create_table(*_OLD_DUE)
    op.create_index("ix_compute_due_at", "compute_due", ["due_at_ms"])
    compute_profile_due.drop(op.get_bind(), checkfirst=True)
    compute_profile_state.drop(op.get_bind(), checkfirst=True)
