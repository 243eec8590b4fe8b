"""Tables of activation's own bookkeeping (what destinations hold lives in ``delivery.py``).

``activation_connections`` records when each (event destination, computation) connection was
first seen and how far its first sync has got: the first sync sends every current member from
``computed_values`` and the result stream is only read after ``from_offset`` for it, so history
already folded into the current values is not sent twice (and never, for ``historical: false``).

``activation_lists`` is one row per (list destination, audience): whether the vendor list is
confirmed created (and its id there), the sync schedule, and why a new list is held back.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table, Text

from traitsync.store.tables import metadata

activation_connections = Table(
    "activation_connections",
    metadata,
    Column("destination_id", String(200), primary_key=True),
    Column("computation_id", String(200), primary_key=True),
    Column("computation_key", String(200), nullable=False),
    # computation_results rows at or below this offset are covered by the first sync.
    Column("from_offset", BigInteger, nullable=False),
    # The last profile id the first sync handled; NULL once the first sync is complete.
    Column("first_sync_cursor", String(300)),
    Column("first_sync_done", Boolean, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("completed_at_ms", BigInteger),
)

activation_lists = Table(
    "activation_lists",
    metadata,
    Column("destination_id", String(200), primary_key=True),
    Column("computation_id", String(200), primary_key=True),
    Column("computation_key", String(200), nullable=False),
    Column("created", Boolean, nullable=False),
    Column("external_id", Text),
    Column("sync_seq", Integer, nullable=False),
    Column("last_sync_at_ms", BigInteger),
    Column("next_sync_at_ms", BigInteger, nullable=False),
    # Why the last sync was held (the audience below the vendor's minimum size); NULL when it ran.
    Column("held_reason", Text),
    # Members counted when the last sync was held.
    Column("member_count", BigInteger),
)

ACTIVATION_TABLES = (activation_connections, activation_lists)
