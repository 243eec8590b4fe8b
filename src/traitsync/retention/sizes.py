"""Rows (and bytes, where the store says) of every traitsync table, for ``traitsync log stats``."""

from __future__ import annotations

from traitsync.store.database import Database
from traitsync.store.tables import metadata


def table_sizes(db: Database) -> list[tuple[str, int, int | None]]:
    """(table, rows, bytes or None) for every table of the schema, largest first."""
    import traitsync.store.tables.activation
    import traitsync.store.tables.compute
    import traitsync.store.tables.delivery
    import traitsync.store.tables.identity
    import traitsync.store.tables.log
    import traitsync.store.tables.privacy
    import traitsync.store.tables.profiles  # noqa: F401  (every table on the metadata)

    out: list[tuple[str, int, int | None]] = []
    conn = db.connect()
    try:
        for name in sorted(metadata.tables):
            rows = int(conn.scalar(f'SELECT COUNT(*) FROM "{name}"') or 0)
            size: int | None = None
            if conn.dialect == "postgresql":
                size = int(conn.scalar("SELECT pg_total_relation_size(?::regclass)", (name,)) or 0)
            else:
                try:
                    size = int(conn.scalar("SELECT SUM(pgsize) FROM dbstat WHERE name = ?", (name,)) or 0)
                except Exception:  # SQLite built without the dbstat table
                    size = None
            out.append((name, rows, size))
        conn.commit()
    finally:
        conn.close()
    return sorted(out, key=lambda t: (-(t[2] or 0), -t[1], t[0]))
