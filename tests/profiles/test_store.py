"""The profile store's read side and identifier deletion, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.identity.conftest import Harness, db, harness  # noqa: F401  (fixtures for both backends)
from traitsync.profiles import DeleteRefused, ProfileStore


def test_store_reads_and_deletes(harness: Callable[..., Harness]) -> None:  # noqa: F811
    h = harness()
    h.send({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"name": "Jane", "gone": None}})
    h.send({"type": "track", "anonymousId": "a2", "event": "Viewed"})
    h.send({"type": "track", "userId": "u1", "anonymousId": "a2", "event": "Bought"})
    h.send({"type": "group", "userId": "u1", "groupId": "g1", "traits": {"plan": "pro"}})
    h.run()
    store = ProfileStore(h.db)
    pid = store.find("users", "user_id", "u1")
    assert pid is not None and store.find("users", "anonymous_id", "a2") == pid
    assert store.find("users", "user_id", "nobody") is None
    assert [(t.key, t.value) for t in store.traits(pid)] == [("name", "Jane")]
    assert [(e.id_type, e.value) for e in store.external_ids(pid)] == [
        ("anonymous_id", "a1"), ("user_id", "u1"), ("anonymous_id", "a2")]
    members = store.members(pid)
    assert len(members) == 2 and members[0] == pid
    evs = store.events(members, "users", start_ms=None, end_ms=None, include=None, exclude=["Viewed"],
                       descending=False, after=None, limit=10)
    assert [e.body["messageId"] for e in evs] == ["m00001", "m00003", "m00004"]
    [(account, ids)] = store.linked(pid, "users", 10)
    assert [(e.id_type, e.value) for e in ids] == [("group_id", "g1")]
    assert [u for u, _ in store.linked(account, "accounts", 10)] == [pid]
    meta = store.metadata(pid)
    assert meta is not None and meta["first_message_id"] == "m00001" and meta["last_message_id"] == "m00004"
    with pytest.raises(DeleteRefused) as refused:
        store.delete_external_id("u1", "user_id", "u1")
    assert refused.value.code == "bad_request"
    with pytest.raises(DeleteRefused) as refused:
        store.delete_external_id("u1", "anonymous_id", "zz")
    assert refused.value.code == "eid_not_found"
    store.delete_external_id("u1", "anonymous_id", "a1")
    assert store.find("users", "anonymous_id", "a1") is None
