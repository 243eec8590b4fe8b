"""Bring a database to the newest schema with Alembic, safely from several processes at once."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from traitsync.errors import StorageUnavailable
from traitsync.store.database import Database

_MIGRATIONS = Path(__file__).parent / "migrations"
_lock = threading.Lock()
_done: set[str] = set()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def migrate(db: Database) -> None:
    """Upgrade to head once per process and URL; PostgreSQL serialises concurrent upgraders."""
    with _lock:
        if db.url in _done:
            return
        if db.path is not None:
            db.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(db.sqlalchemy_url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                if db.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(7352001)"))
                else:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except Exception as exc:  # OperationalError and friends: the store is not there
            raise StorageUnavailable(f"cannot migrate {db.redacted_url()}: {exc}") from exc
        finally:
            engine.dispose()
        _done.add(db.url)


def forget_migrations() -> None:
    """Tests that drop schemas call this so the next ``migrate`` runs again."""
    with _lock:
        _done.clear()
