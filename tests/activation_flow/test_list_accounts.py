"""An account audience on a list destination (Facebook Custom Audiences, against a local fake of
the Graph API): the list holds the users of the matching accounts, hashed, consenting ones only,
and follows users who join, leave or move between accounts. SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.activation_flow.account_flow import ACC_AUDIENCE, AccountFlow
from tests.activation_flow.conftest import plain_pii, shown_by_the_api
from tests.activation_flow.test_list_facebook import TOKEN, graph, sha, uploads  # noqa: F401  (fixture)
from tests.destinations.fakes.server import FakeVendor
from traitsync.store import Database


def destination(fake: FakeVendor) -> str:
    return f"""\
  - id: dst_fb
    kind: facebook_custom_audiences
    settings: {{access_token: "{TOKEN}", ad_account_id: "1234", endpoint: "{fake.url}/v24.0"}}
    min_audience_size: 1
    consent_categories: [advertising]
    connections:
      - computation: {ACC_AUDIENCE}
"""


@pytest.fixture
def flow(db: Database, tmp_path: Path, graph: FakeVendor,  # noqa: F811  (the imported fixture)
         capfd: pytest.CaptureFixture[str]) -> Iterator[AccountFlow]:
    """The flow; afterwards every log line and API answer about the list is scanned for plain PII."""
    made = AccountFlow(db, destination(graph), tmp_path)
    yield made
    try:
        out, err = capfd.readouterr()
        sys.stdout.write(out)
        sys.stderr.write(err)
        assert plain_pii(made, out + err + shown_by_the_api(made)) == []
    finally:
        made.close()


def person(flow: AccountFlow, user: str, email: str, *, consent: bool = True) -> None:
    flow.send({"type": "identify", "userId": user, "traits": {"email": email},
               "context": {"consent": {"categoryPreferences": {"advertising": consent}}}})


def row(email: str) -> list[str]:
    return [sha(email), "", "", ""]


def test_account_audience_list_follows_joins_leaves_and_moves(flow: AccountFlow,
                                                              graph: FakeVendor) -> None:  # noqa: F811
    person(flow, "u1", "ada@example.com")
    person(flow, "u2", "grace@example.com")
    person(flow, "u3", "alan@example.com")
    person(flow, "u4", "edsger@example.com")
    person(flow, "u6", "nosy@example.com", consent=False)
    flow.group("u1", "g_acme", plan="enterprise")
    flow.group("u2", "g_acme")
    flow.group("u3", "g_beta", plan="free")
    flow.group("u4", "g_acme")
    flow.group("u4", "g_gamma")  # a user in two matching accounts
    flow.group("u6", "g_acme")  # said no to advertising: never uploaded
    flow.publish(ACC_AUDIENCE, {"g_acme": True, "g_beta": False, "g_gamma": True})

    flow.sync_lists("dst_fb")  # create the audience (Facebook needs its id before uploads)
    flow.sync_lists("dst_fb")  # every user of the matching accounts, once each
    assert uploads(graph, "POST") == [("/v24.0/23841/users", sorted([
        row("ada@example.com"), row("grace@example.com"), row("edsger@example.com")]))]

    flow.move("u1", "g_acme", "g_beta")  # moves to an account outside the audience: leaves the list
    person(flow, "u5", "barbara@example.com")
    flow.group("u5", "g_acme")  # joins a matching account: added
    flow.move("u4", "g_gamma", "g_beta")  # still in acme: stays, nothing sent
    flow.sync_lists("dst_fb")
    assert uploads(graph, "DELETE") == [("/v24.0/23841/users", [row("ada@example.com")])]
    assert uploads(graph, "POST")[1:] == [("/v24.0/23841/users", [row("barbara@example.com")])]

    flow.publish(ACC_AUDIENCE, {"g_beta": True})  # the account u1 moved to enters: u1 and u3 come in
    flow.sync_lists("dst_fb")
    assert uploads(graph, "POST")[2:] == [("/v24.0/23841/users", sorted([
        row("ada@example.com"), row("alan@example.com")]))]

    flow.publish(ACC_AUDIENCE, {"g_acme": False})  # acme leaves: its users not in beta leave the list
    flow.sync_lists("dst_fb")
    assert uploads(graph, "DELETE")[1:] == [("/v24.0/23841/users", sorted([
        row("grace@example.com"), row("barbara@example.com")]))]
    assert sorted(v for (v,) in flow.rows(
        "SELECT id_value FROM activation_list_members WHERE id_type = 'email'")) == sorted([
        "ada@example.com", "alan@example.com", "edsger@example.com"])  # edsger: now in beta too
    flow.sync_lists("dst_fb")  # nothing changed: nothing sent
    assert len(graph.on("POST", "/v24.0/2")) == 3 and len(graph.on("DELETE", "/v24.0/2")) == 2
    assert graph.violations == []
