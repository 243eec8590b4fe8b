"""SQLAlchemy Core tables, one module per stage, all on one ``metadata``.

Each stage owns its module (``log.py``, ``identity.py``, ...); the Alembic revisions under
``store/migrations/versions`` create them, in flow order.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

metadata = MetaData()

#: Auto-incrementing 64-bit keys: BIGSERIAL on PostgreSQL, the rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
