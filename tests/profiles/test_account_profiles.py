"""The Profile API on ``collections/accounts``: an account's computed values (from the realtime
engine) next to its traits, and its users under ``/links``, including after a move."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.compute.realtime.conftest import Harness, defs
from tests.profiles.conftest import Server
from traitsync.compute.realtime import computed_traits_provider
from traitsync.identity import IdentityWorker, default_identity_config

DEFS = """
computed_traits:
  - key: account_spend
    level: account
    query: event('Order').sum(property('total'))
  - key: orders
    query: event('Order').count()
audiences:
  - key: buyers
    query: event('Order').count() >= 1
  - key: accounts_with_a_buyer
    level: account
    query: ANY audience('buyers')
"""


def _user_ids(server: Server, group: str) -> list[str]:
    r = server.get(f"accounts/profiles/group_id:{group}/links")
    assert r.status_code == 200
    assert all(u["to_collection"] == "users" for u in r.json()["data"])
    return sorted(e["id"] for u in r.json()["data"] for e in u["external_ids"] if e["type"] == "user_id")


def test_account_traits_links_and_computed_values(tmp_path: Path) -> None:
    h = Harness(f"sqlite:///{tmp_path}/p.db", defs(DEFS))
    h.identity.close()
    h.identity = IdentityWorker(h.db, replace(default_identity_config(), account_membership="latest"))
    server = Server(h.db, computed_traits_provider(h.db))
    try:
        h.send({"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
               {"type": "group", "userId": "u2", "groupId": "g1", "traits": {}})
        h.track("u1", "Order", total=30)
        h.track("u2", "Order", total=12)
        h.sync()
        r = server.get("accounts/profiles/group_id:g1/traits")
        assert r.status_code == 200
        assert r.json()["traits"] == {"name": "Acme", "account_spend": 42, "accounts_with_a_buyer": True}
        assert server.get("accounts/profiles/group_id:g1/traits", params={"class": "audience"}).json()[
            "traits"] == {"accounts_with_a_buyer": True}
        assert server.get("accounts/profiles/group_id:g1/traits", params={"class": "computed_trait"}).json()[
            "traits"] == {"account_spend": 42}
        # a user's own values stay on the user (no account key, no hidden member audience)
        assert server.get("users/profiles/user_id:u1/traits").json()["traits"] == {"orders": 1, "buyers": True}
        assert _user_ids(server, "g1") == ["u1", "u2"]

        h.send({"type": "group", "userId": "u2", "groupId": "g2", "traits": {"name": "Beta"}})  # u2 moves
        h.sync()
        assert _user_ids(server, "g1") == ["u1"] and _user_ids(server, "g2") == ["u2"]
        assert server.get("accounts/profiles/group_id:g1/traits").json()["traits"]["account_spend"] == 30
        assert server.get("accounts/profiles/group_id:g2/traits").json()["traits"] == {
            "name": "Beta", "account_spend": 12, "accounts_with_a_buyer": True}
        r = server.get("users/profiles/user_id:u2/links")
        assert [e["id"] for d in r.json()["data"] for e in d["external_ids"]] == ["g2"]
    finally:
        server.stop()
        h.close()
