"""Finding profiles by a typed-in identifier, on both stores."""

from __future__ import annotations

from traitsync.profiles.lookup import identifiers_of, search
from traitsync.store import Database, migrate


def _store(db_url: str) -> Database:
    db = Database(db_url)
    migrate(db)
    conn = db.connect()
    rows = [("user_id", "user_010", "p1"), ("email", "ada@example.com", "p1"), ("user_id", "user_011", "p2"),
            ("user_id", "user_1", "p3"), ("email", "user_010", "p4"), ("anonymous_id", "a:b", "p5")]
    with conn.transaction():
        for offset, (id_type, value, pid) in enumerate(rows):
            conn.execute("INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, "
                         "created_at_ms, first_message_id, event_offset) VALUES (?, ?, 'users', ?, 's', 0, 'm', ?)",
                         (id_type, value, pid, offset))
    conn.close()
    return db


def test_exact_matches_come_first_then_prefixes(db_url: str) -> None:
    db = _store(db_url)
    found = search(db, "user_01")
    assert [(m.id_type, m.value) for m in found] == [("user_id", "user_010"), ("user_id", "user_011"),
                                                     ("email", "user_010")]
    exact = search(db, "user_010")
    assert [m.profile_id for m in exact] == ["p1", "p4"]
    assert search(db, "user_1")[0].profile_id == "p3"


def test_type_value_narrows_to_one_type_and_other_colons_are_part_of_the_value(db_url: str) -> None:
    db = _store(db_url)
    assert [m.profile_id for m in search(db, "email:user_0")] == ["p4"]
    assert [m.profile_id for m in search(db, "a:b", ["anonymous_id"])] == ["p5"]
    assert search(db, "  ") == []


def test_identifiers_of_a_page_of_profiles(db_url: str) -> None:
    db = _store(db_url)
    assert identifiers_of(db, ["p1", "p9"]) == {"p1": {"user_id": ["user_010"], "email": ["ada@example.com"]},
                                                "p9": {}}
