"""Upgrading a store from before the delivery platform keeps its outbox and folds nothing twice."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from traitsync.store import Database
from traitsync.store.migrate import alembic_config, forget_migrations, migrate


def test_upgrade_from_0007_marks_delivered_rows_applied_and_adds_indexes(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    engine = create_engine(db.sqlalchemy_url)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007_engine_state")
    with engine.begin() as conn:
        # As 0004 created the tables before this release (it builds them from today's definitions).
        for index in ("ix_delivery_outbox_unapplied", "ix_delivery_outbox_open", "ix_delivery_outbox_open_key"):
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text("ALTER TABLE delivery_outbox DROP COLUMN applied"))
        conn.execute(text("ALTER TABLE delivery_outbox DROP COLUMN adapter_input"))
        conn.execute(text("ALTER TABLE delivery_attempts DROP COLUMN requests"))
        conn.execute(text("DROP TABLE IF EXISTS delivery_destination_state"))
        for state, terminal in (("delivered", 1), ("pending", 0)):
            conn.execute(text(
                "INSERT INTO delivery_outbox (destination_id, order_key, message_id, message_type, state, terminal,"
                " attempts, created_at_ms, next_attempt_at_ms, body) VALUES ('d', 'p', :m, 'identify', :s, :t, 0,"
                " 0, 0, '{}')"), {"m": f"m-{state}", "s": state, "t": terminal})
    engine.dispose()
    forget_migrations()
    migrate(db)
    conn = db.connect()
    rows = conn.fetchall("SELECT message_id, applied FROM delivery_outbox ORDER BY id")
    conn.close()
    assert [(m, bool(a)) for m, a in rows] == [("m-delivered", True), ("m-pending", False)]
    engine = create_engine(db.sqlalchemy_url)
    names = {i["name"] for i in inspect(engine).get_indexes("delivery_outbox")}
    engine.dispose()
    assert {"ix_delivery_outbox_unapplied", "ix_delivery_outbox_open", "ix_delivery_outbox_open_key"} <= names


def test_upgrade_from_0010_adds_privacy_token_and_snapshot_tables(db_url: str) -> None:
    """On SQLite and PostgreSQL alike: a store at 0010 gains the regulation, suppression, token and
    past-snapshot tables (list holds are a column)."""
    db = Database(db_url)
    engine = create_engine(db.sqlalchemy_url)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010_drop_results_profile_index")
    before = set(inspect(engine).get_table_names())
    engine.dispose()
    forget_migrations()
    migrate(db)
    engine = create_engine(db.sqlalchemy_url)
    after = set(inspect(engine).get_table_names())
    engine.dispose()
    assert after - before == {"privacy_regulations", "privacy_suppressions", "management_tokens",
                              "computation_snapshots"}
