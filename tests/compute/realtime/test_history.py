"""Size history and member pages, read from what the engine stores, on both stores."""

from __future__ import annotations

from traitsync.compute.realtime.history import KEY_ORDER_FROM, MINUTE_MS, SizeHistory, members_page
from traitsync.store import Database, migrate

NOW = 1_800_000_000_000


def _result(db: Database, key: str, klass: str, profile: str, old: str | None, new: str | None, at: int) -> None:
    conn = db.connect()
    with conn.transaction():
        conn.execute(
            "INSERT INTO computation_results (computation_key, computation_id, computation_class, profile_id, "
            "old_value, new_value, version, as_of_ms, cause, at_ms) VALUES (?, ?, ?, ?, ?, ?, 1, ?, 'event', ?)",
            (key, f"id_{key}", klass, profile, old, new, at, at))
    conn.close()


def test_sizes_step_with_entries_and_exits_and_end_at_the_current_size(db_url: str) -> None:
    db = Database(db_url)
    migrate(db)
    history = SizeHistory(db, clock=lambda: NOW / 1000)
    for n in range(3):  # three enter at minutes 10, 20, 30 ago
        _result(db, "aud", "audience", f"p{n}", None, "true", NOW - (30 - 10 * n) * MINUTE_MS)
    _result(db, "aud", "audience", "p0", "true", "false", NOW - 5 * MINUTE_MS)  # one leaves
    _result(db, "trait", "trait", "p0", None, "12", NOW - 5 * MINUTE_MS)  # another computation
    points = history.series("aud", current_size=2, since_ms=NOW - 40 * MINUTE_MS, until_ms=NOW, buckets=8)
    assert [p.size for p in points] == [0, 0, 1, 1, 2, 2, 3, 2]
    assert points[-1].at_ms == NOW
    # A change at a bucket's end counts in the next bucket ([since, until) ranges).
    # Read incrementally: a new entry shows without re-reading the stream.
    _result(db, "aud", "audience", "p3", None, "true", NOW - MINUTE_MS // 2)
    points = history.series("aud", current_size=3, since_ms=NOW - 40 * MINUTE_MS, until_ms=NOW, buckets=8)
    assert [p.size for p in points] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_both_ways_of_paging_members_give_the_same_pages(db_url: str) -> None:
    db = Database(db_url)
    migrate(db)
    conn = db.connect()
    with conn.transaction():
        for n in range(30):
            conn.execute("INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms) "
                         "VALUES (?, 'aud', ?, 1, ?)", (f"p{n:02d}", "true" if n % 3 else "false", NOW))
    conn.close()
    pages = {}
    for size in (20, KEY_ORDER_FROM):
        seen, after = [], None
        while page := members_page(db, "aud", is_audience=True, size=size, after=after, limit=7):
            seen += [pid for pid, _, _ in page]
            after = page[-1][0]
        pages[size] = seen
    assert pages[20] == pages[KEY_ORDER_FROM] == [f"p{n:02d}" for n in range(30) if n % 3]
