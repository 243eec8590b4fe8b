"""The SQL list diff against the pure reference (ID Sync's ``select_identifiers`` plus set algebra).

For any profiles, identifiers, memberships, confirmed list and ID Sync setting, the adds the
database streams are exactly the selected identifiers of current members the list does not
hold, and the removes exactly the held identifiers no member's selection includes; batches
never exceed the size asked for. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.delivery.conftest import pg_db, sqlite_db  # noqa: F401  (fixtures)
from traitsync.activation.ids import select_identifiers
from traitsync.activation.list_members import count_members, strategies, stream_adds, stream_removes
from traitsync.activation.types import Identifier, IdStrategy
from traitsync.store import Database

TYPES = ("user_id", "email", "phone", "anonymous_id")
VALUES = ("a", "b", "c", "d", "e", "f")

profiles_st = st.dictionaries(
    st.sampled_from([f"p{i}" for i in range(6)]),
    st.tuples(st.booleans(), st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from(VALUES)), max_size=5)),
    max_size=6)
id_sync_st = st.one_of(st.none(), st.dictionaries(st.sampled_from(TYPES), st.sampled_from(["first", "last", "all"]),
                                                  min_size=1, max_size=3))
held_st = st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from((*VALUES, "zz"))), max_size=8)


def _load(db: Database, profiles: dict[str, tuple[bool, list[tuple[str, str]]]], held: list[tuple[str, str]]
          ) -> dict[str, list[Identifier]]:
    """Write the rows the upstream stages would; return each profile's identifiers in store order."""
    conn = db.connect()
    owned: dict[tuple[str, str], str] = {}
    order: dict[str, list[Identifier]] = {}
    offset = 0
    with conn.transaction():
        for table in ("profile_external_ids", "computed_values", "activation_list_members"):
            conn.execute(f"DELETE FROM {table}")
        for pid, (member, idents) in sorted(profiles.items()):
            conn.execute("INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms)"
                         " VALUES (?, ?, ?, ?, ?)", (pid, "aud", "true" if member else "false", 1, 1))
            for id_type, value in idents:
                text = f"{id_type}:{value}"  # values unique per type across the store, as identity keeps them
                if (id_type, text) in owned:
                    continue
                owned[(id_type, text)] = pid
                offset += 1
                conn.execute(
                    "INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id,"
                    " created_at_ms, first_message_id, event_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (id_type, text, "users", pid, "src", 1, f"m{offset}", offset))
                order.setdefault(pid, []).append(Identifier(id_type, text))
        for id_type, value in sorted(set(held)):
            conn.execute("INSERT INTO activation_list_members (destination_id, computation_id, id_type, id_value,"
                         " profile_id, added_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                         ("dst", "aud_1", id_type, f"{id_type}:{value}", "p_old", 1))
    conn.close()
    return order


def _check(db: Database, profiles: dict[str, tuple[bool, list[tuple[str, str]]]],
           id_sync: dict[str, IdStrategy] | None, include_anonymous: bool, held: list[tuple[str, str]],
           size: int) -> None:
    order = _load(db, profiles, held)
    selected = {i for pid, (member, _) in profiles.items() if member
                for i in select_identifiers(order.get(pid, []), id_sync=id_sync, include_anonymous=include_anonymous)}
    confirmed = {Identifier(t, f"{t}:{v}") for t, v in held}
    plan = strategies(id_sync, include_anonymous)
    conn = db.connect()
    with conn.transaction():
        adds = list(stream_adds(conn, "dst", "aud_1", "aud", plan, size))
        removes = list(stream_removes(conn, "dst", "aud_1", "aud", plan, size))
        counted = count_members(conn, "aud", plan)
    conn.close()
    assert all(0 < len(batch) <= size for batch in adds + removes)
    assert {m.identifier for batch in adds for m in batch} == selected - confirmed
    assert {m.identifier for batch in removes for m in batch} == confirmed - selected
    flat = [m.identifier for batch in adds for m in batch]
    assert len(flat) == len(set(flat))  # each identifier once
    members_with_ids = {pid for pid, (member, _) in profiles.items() if member and select_identifiers(
        order.get(pid, []), id_sync=id_sync, include_anonymous=include_anonymous)}
    assert counted == len(members_with_ids)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Database:
    database: Database = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    return database


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(profiles=profiles_st, id_sync=id_sync_st, include_anonymous=st.booleans(), held=held_st,
       size=st.integers(1, 4))
def test_sql_diff_equals_the_reference(store: Database, profiles: Any, id_sync: Any, include_anonymous: bool,
                                       held: Any, size: int) -> None:
    _check(store, profiles, id_sync, include_anonymous, held, size)


accounts_st = st.dictionaries(st.sampled_from([f"acc_{i}" for i in range(4)]), st.booleans(), max_size=4)
links_st = st.lists(st.tuples(st.sampled_from([f"p{i}" for i in range(6)]),
                              st.sampled_from([f"acc_{i}" for i in range(4)])), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(profiles=profiles_st, accounts=accounts_st, links=links_st, id_sync=id_sync_st,
       include_anonymous=st.booleans(), held=held_st, size=st.integers(1, 4))
def test_account_audience_diff_equals_the_reference(store: Database, profiles: Any, accounts: Any, links: Any,
                                                     id_sync: Any, include_anonymous: bool, held: Any,
                                                     size: int) -> None:
    """An account audience's list: the users linked to an account in the audience, each once,
    whatever their own (user-level) values, however many matching accounts they are in."""
    users = {pid: (False, idents) for pid, (_, idents) in profiles.items()}  # user values must not count
    order = _load(store, users, held)
    conn = store.connect()
    with conn.transaction():
        conn.execute("DELETE FROM profile_links")
        for account, member in sorted(accounts.items()):
            conn.execute("INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms)"
                         " VALUES (?, ?, ?, ?, ?)", (account, "aud", "true" if member else "false", 1, 1))
        for user, account in sorted(set(links)):
            conn.execute("INSERT INTO profile_links (user_profile_id, account_profile_id, source_id, created_at_ms,"
                         " first_message_id) VALUES (?, ?, ?, ?, ?)", (user, account, "src", 1, "m"))
    members = {user for user, account in links if accounts.get(account) is True}
    selected = {i for pid in members
                for i in select_identifiers(order.get(pid, []), id_sync=id_sync, include_anonymous=include_anonymous)}
    confirmed = {Identifier(t, f"{t}:{v}") for t, v in held}
    plan = strategies(id_sync, include_anonymous)
    with conn.transaction():
        adds = list(stream_adds(conn, "dst", "aud_1", "aud", plan, size, account=True))
        removes = list(stream_removes(conn, "dst", "aud_1", "aud", plan, size, account=True))
        counted = count_members(conn, "aud", plan, account=True)
    conn.close()
    assert all(0 < len(batch) <= size for batch in adds + removes)
    flat = [m.identifier for batch in adds for m in batch]
    assert len(flat) == len(set(flat))  # a user in two matching accounts is listed once
    assert set(flat) == selected - confirmed
    assert {m.identifier for batch in removes for m in batch} == confirmed - selected
    assert counted == len({pid for pid in members if select_identifiers(
        order.get(pid, []), id_sync=id_sync, include_anonymous=include_anonymous)})
