"""Properties of the graph on random event streams over a small universe of identifiers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traitsync.identity import IdentityWorker, identity_config_from_dict, rebuild, snapshot
from traitsync.identity.config import DAY_MS
from traitsync.log.event_log import Checkpoints, EventLog
from traitsync.store.database import Database

RULES: dict[str, Any] = {
    "rules": [{"id_type": "anonymous_id", "limit": 3}, {"id_type": "email", "limit": 2, "period": "2 days"},
              {"id_type": "crm_id", "limit": 2, "priority": 2}],
    "caps": {"merges": 3, "mappings": 7},
}
USERS = [f"u{i}" for i in range(4)] + [None]
ANONS = [f"a{i}" for i in range(6)] + ["null", None]
EMAILS = [f"e{i}@x.com" for i in range(3)] + [None]
CRM = [f"c{i}" for i in range(3)] + [None]


@st.composite
def message(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["identify", "track", "group", "alias"]))
    uid, anon = draw(st.sampled_from(USERS)), draw(st.sampled_from(ANONS))
    if uid is None and anon is None:
        anon = "a0"
    msg: dict[str, Any] = {"type": kind}
    if uid is not None:
        msg["userId"] = uid
    if anon is not None:
        msg["anonymousId"] = anon
    email, crm = draw(st.sampled_from(EMAILS)), draw(st.sampled_from(CRM))
    context: dict[str, Any] = {}
    if email is not None:
        if kind == "identify":
            msg["traits"] = {"email": email, "plan": draw(st.sampled_from(["a", "b", None, ""]))}
        else:
            context["traits"] = {"email": email}
    if crm is not None:
        context["externalIds"] = [{"id": crm, "type": "crm_id", "collection": "users", "encoding": "none"}]
    if context:
        msg["context"] = context
    if kind == "track":
        msg["event"] = draw(st.sampled_from(["A", "B"]))
    if kind == "group":
        msg["groupId"] = draw(st.sampled_from(["g0", "g1"]))
        msg["traits"] = {"tier": draw(st.integers(0, 3))}
    if kind == "alias":
        msg["previousId"] = draw(st.sampled_from(["u0", "u1"]))
    return msg


def materialise(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = 1_704_067_200_000
    out = []
    for i, m in enumerate(msgs):
        ts = base + i * DAY_MS // 3
        out.append({**m, "messageId": f"m{i:05d}",
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) + ".000Z"})
    return out


def build(path: Path, msgs: list[dict[str, Any]], chunk_size: int, membership: str = "many") -> Database:
    db = Database(f"sqlite:///{path}")
    EventLog(db).append_messages("src", msgs)
    config = replace(identity_config_from_dict(RULES), account_membership=membership)
    worker = IdentityWorker(db, config, chunk_size=chunk_size)
    while worker.run_once():
        pass
    worker.close()
    return db


def check_invariants(db: Database) -> None:
    conn = db.connect()
    try:
        canonical = {r[0] for r in conn.fetchall("SELECT profile_id FROM profiles WHERE merged_into IS NULL")}
        rows = conn.fetchall("SELECT collection, id_type, value, profile_id, created_at_ms FROM profile_external_ids")
        assert len({(c, t, v) for c, t, v, _, _ in rows}) == len(rows)
        per_profile: dict[str, list[tuple[str, str, int]]] = {}
        for _c, t, v, pid, at in rows:
            assert pid in canonical, "an identifier points at a merged-away profile"
            per_profile.setdefault(pid, []).append((t, v, at))
        config = identity_config_from_dict(RULES)
        for pid, ids in per_profile.items():
            assert len(ids) <= config.max_mappings
            for id_type in {t for t, _, _ in ids}:
                rule = config.rule(id_type)
                times = sorted(at for t, _, at in ids if t == id_type)
                if rule.period_days is None:
                    assert len(times) <= rule.limit, (pid, id_type)
                else:
                    for at in times:
                        window = [x for x in times if at - rule.period_days * DAY_MS < x <= at]
                        assert len(window) <= rule.limit, (pid, id_type)
        for (merges,) in conn.fetchall("SELECT merge_count FROM profiles"):
            assert merges <= config.max_merges
        merged = conn.fetchall("SELECT p.merged_into FROM profiles p WHERE p.merged_into IS NOT NULL")
        assert all(m in canonical for (m,) in merged), "merged_into is not flat"
        events = conn.scalar("SELECT COUNT(*) FROM events")
        assert conn.scalar("SELECT COUNT(*) FROM profile_events") == events
    finally:
        conn.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message(), min_size=1, max_size=60))
def test_random_streams_keep_every_invariant(msgs: list[dict[str, Any]]) -> None:
    msgs = materialise(msgs)
    with tempfile.TemporaryDirectory() as tmp:
        one = build(Path(tmp) / "one.db", msgs, chunk_size=1)
        many = build(Path(tmp) / "many.db", msgs, chunk_size=1000)
        check_invariants(one)
        a, b = snapshot(one), snapshot(many)
        assert a == b, "one at a time and chunks of 1,000 disagree"
        report = rebuild(many, identity_config_from_dict(RULES))
        assert report.equal, report.differences
        assert report.events == EventLog(many).count()


def links_from_changes(db: Database) -> set[tuple[str, str]]:
    """The links as the change stream tells them (what the realtime engine follows): linked and
    unlinked changes, and merges moving the absorbed user's links to the survivor."""
    conn = db.connect()
    try:
        rows = conn.fetchall('SELECT kind, profile_id, other_profile_id FROM profile_changes ORDER BY "offset"')
    finally:
        conn.close()
    links: set[tuple[str, str]] = set()
    for kind, pid, other in rows:
        if kind == "linked":
            links.add((other, pid))
        elif kind == "unlinked":
            links.discard((other, pid))
        elif kind == "merged":
            moved = {(u, a) for u, a in links if u == other}
            links = (links - moved) | {(pid, a) for _, a in moved}
    return links


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message(), min_size=1, max_size=60), st.sampled_from(["many", "latest"]))
def test_links_follow_the_change_stream_and_latest_moves_users(msgs: list[dict[str, Any]], membership: str) -> None:
    msgs = materialise(msgs)
    with tempfile.TemporaryDirectory() as tmp:
        one = build(Path(tmp) / "one.db", msgs, chunk_size=1, membership=membership)
        many = build(Path(tmp) / "many.db", msgs, chunk_size=1000, membership=membership)
        a, b = snapshot(one), snapshot(many)
        assert a == b, "one at a time and chunks of 1,000 disagree"
        assert links_from_changes(one) == links_from_changes(many) == {tuple(r) for r in a["links"]}
        if membership == "latest":  # a user's last group call (after its last merge) names its only account
            for user, accounts in _accounts_by_user(a["links"]).items():
                assert len(accounts) == 1 or _merged_since_group(one, user), (user, accounts)
        config = replace(identity_config_from_dict(RULES), account_membership=membership)
        report = rebuild(many, config)
        assert report.equal, report.differences


def _accounts_by_user(links: set[tuple[Any, ...]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for user, account in links:
        out.setdefault(str(user), set()).add(str(account))
    return out


def _merged_since_group(db: Database, user: str) -> bool:
    conn = db.connect()
    try:
        last_group = conn.scalar("SELECT MAX(event_offset) FROM profile_changes WHERE kind = 'linked' AND "
                                 "other_profile_id = ?", (user,))
        last_merge = conn.scalar("SELECT MAX(event_offset) FROM identity_merges WHERE survivor_id = ?", (user,))
    finally:
        conn.close()
    return last_merge is not None and (last_group is None or int(last_merge) >= int(last_group))


_CHILD = """
import sys
from traitsync.identity import IdentityWorker, identity_config_from_dict
from traitsync.store.database import Database
import orjson
worker = IdentityWorker(Database(sys.argv[1]), identity_config_from_dict(orjson.loads(sys.argv[2])), chunk_size=7)
while True:
    worker.run_once(7)
"""


def test_sigkill_mid_stream_then_restart_gives_the_same_graph(tmp_path: Path) -> None:
    import random

    rnd = random.Random(7)
    msgs = materialise([_random_message(rnd) for _ in range(4000)])
    reference = build(tmp_path / "reference.db", msgs, chunk_size=1000)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    db = Database(url)
    EventLog(db).append_messages("src", msgs)
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, url, orjson.dumps(RULES).decode()], env=env)
    try:
        deadline = time.monotonic() + 60
        checkpoint = 0
        while time.monotonic() < deadline:
            conn = db.connect()
            checkpoint = Checkpoints.get(conn, "identity")
            conn.close()
            if checkpoint >= 300:
                break
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert 300 <= checkpoint < 4000, checkpoint
    worker = IdentityWorker(db, identity_config_from_dict(RULES), chunk_size=500)
    while worker.run_once():
        pass
    worker.close()
    check_invariants(db)
    assert snapshot(db) == snapshot(reference)


def _random_message(rnd: Any) -> dict[str, Any]:
    uid, anon = rnd.choice([*USERS, None, None]), rnd.choice(ANONS + [f"x{i}" for i in range(300)])
    msg: dict[str, Any] = {"type": rnd.choice(["identify", "track", "track", "group"])}
    if uid:
        msg["userId"] = uid
    msg["anonymousId"] = anon or "a1"
    if msg["type"] == "identify":
        msg["traits"] = {"email": rnd.choice(EMAILS[:-1]), "n": rnd.randint(0, 5)}
    if msg["type"] == "track":
        msg["event"] = "E"
    if msg["type"] == "group":
        msg["groupId"] = rnd.choice(["g0", "g1"])
    return msg
