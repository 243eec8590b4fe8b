"""Suppress and delete work for every identifier type identity knows, not only userId and email.

The config declares custom identifiers (``phone`` read from traits, ``member_no`` read from the
``memberNumber`` property) and a ``crm_id`` rule; device ids, ``ga_client_id`` and
``context.externalIds`` types come with identity. For each type, a suppression asked through the
API (and through the CLI) refuses a message carrying that identifier where identity would read
it, and nothing else; a deletion by a custom identifier erases the profile holding it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.activation_flow.conftest import wait_for
from tests.ingest.conftest import LiveApp, start_live_app
from traitsync.cli import app as cli_app
from traitsync.ingest.suppressions import REFRESH_SECONDS, SUPPRESSED_MESSAGE

ADMIN = {"Authorization": "Bearer admin-token"}
CONFIG = """\
space_id: spa_test
sources: [{id: src_web, write_key: web-key}]
profile_api: {access_secret: profile-secret}
management_api: {token: admin-token}
identity:
  custom_ids:
    - phone
    - {id_type: member_no, keys: [memberNumber]}
  rules:
    - {id_type: crm_id, limit: 2}
"""

SUPPRESSED = {"success": False, "code": "suppressed", "message": SUPPRESSED_MESSAGE}

#: subject -> a message carrying that identifier where identity reads it (and no other suppressed one).
CARRIERS: dict[str, dict[str, Any]] = {
    "user_id:u-1": {"type": "track", "userId": "u-1", "event": "E"},
    "anonymous_id:a-1": {"type": "track", "anonymousId": "a-1", "event": "E"},
    "email:ada@example.com": {"type": "identify", "anonymousId": "x", "traits": {"email": "ada@example.com"}},
    "phone:+15550100": {"type": "identify", "anonymousId": "x", "traits": {"phone": "+15550100"}},
    "member_no:M-7": {"type": "track", "anonymousId": "x", "event": "E", "properties": {"memberNumber": "M-7"}},
    "crm_id:C-9": {"type": "track", "anonymousId": "x", "event": "E",
                   "context": {"externalIds": [{"type": "CRM_ID", "id": "C-9", "collection": "users",
                                                "encoding": "none"}]}},
    "ios.idfa:IDFA-1": {"type": "track", "anonymousId": "x", "event": "E",
                        "context": {"device": {"type": "ios", "advertisingId": "IDFA-1", "adTrackingEnabled": True}}},
    "android.id:DEV-1": {"type": "track", "anonymousId": "x", "event": "E",
                         "context": {"device": {"type": "android", "id": "DEV-1"}}},
    "ga_client_id:GA.1": {"type": "track", "anonymousId": "x", "event": "E",
                          "integrations": {"Google Analytics": {"clientId": "GA.1"}}},
}


@pytest.fixture
def live(db_url: str) -> Iterator[LiveApp]:
    server = start_live_app(db_url, CONFIG)
    yield server
    server.close()


def send(live: LiveApp, message: dict[str, Any]) -> dict[str, Any]:
    kind = message["type"]
    body = {k: v for k, v in message.items() if k != "type"}
    answer: dict[str, Any] = httpx.post(f"{live.base_url}/v1/{kind}", json=body, auth=("web-key", "")).json()
    return answer


def regulate(live: LiveApp, kind: str, subject: str) -> httpx.Response:
    return httpx.post(live.base_url + "/api/v1/regulations", json={"regulation_type": kind, "subject": subject},
                      headers=ADMIN)


def test_suppress_and_unsuppress_every_identifier_type_through_the_api(live: LiveApp) -> None:
    for subject, message in CARRIERS.items():
        assert send(live, message) == {"success": True}, subject
        response = regulate(live, "suppress", subject.replace("crm_id", "CRM_ID"))  # types are case-insensitive
        assert response.status_code == 201 and response.json()["subject_type"] == subject.split(":")[0], subject
        time.sleep(2 * REFRESH_SECONDS)  # every API process re-reads the list this often
        assert send(live, message) == SUPPRESSED, subject
        other = {**message, "anonymousId": "someone-else", "userId": "someone-else"}
        assert send(live, {k: v for k, v in other.items() if k not in ("traits", "properties", "context",
                                                                          "integrations")}) == {"success": True}
        assert regulate(live, "unsuppress", subject).status_code == 201
        assert wait_for(lambda message=message: send(live, message) == {"success": True}), subject


def test_delete_by_a_custom_identifier_erases_the_profile(live: LiveApp) -> None:
    assert send(live, {"type": "identify", "userId": "ada", "traits": {"phone": "+15550100"}}) == {"success": True}
    assert send(live, {"type": "track", "userId": "bob", "event": "E", "properties": {"memberNumber": "M-8"}}) \
        == {"success": True}
    traits = live.base_url + "/v1/spaces/spa_test/collections/users/profiles/{}/traits"
    for who in ("user_id:ada", "phone:+15550100", "member_no:M-8"):
        assert wait_for(lambda who=who: httpx.get(traits.format(who), auth=("profile-secret", "")).status_code
                        == 200), who
    assert regulate(live, "delete", "Phone:+15550100").status_code == 201
    assert regulate(live, "delete", "member_no:M-8").status_code == 201
    for who in ("user_id:ada", "phone:+15550100", "user_id:bob", "member_no:M-8"):
        assert wait_for(lambda who=who: httpx.get(traits.format(who), auth=("profile-secret", "")).status_code
                        == 404), who
    listed = httpx.get(live.base_url + "/api/v1/regulations", headers=ADMIN).json()["regulations"]
    assert [(r["subject_type"], r["status"], r["detail"].split(";")[0]) for r in listed] == [
        ("member_no", "done", "1 profile(s)"), ("phone", "done", "1 profile(s)")]


def test_suppress_a_custom_identifier_from_the_shell(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["privacy", "suppress", "member_no:M-7", "--by", "dpo", "--database-url",
                                     sqlite_url])
    assert (result.exit_code, result.output) == (
        0, "regulation 1: member_no suppressed: later events carrying it are refused at ingest\n")
    # ... refused by a running server (which reads identifiers as its identity config says)
    live = start_live_app(sqlite_url, CONFIG)
    try:
        assert send(live, CARRIERS["member_no:M-7"]) == SUPPRESSED
        assert send(live, {"type": "track", "anonymousId": "x", "event": "E", "properties": {"memberNumber": "M-1"}}) \
            == {"success": True}
    finally:
        live.close()
    # ... and by an import of an export
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"\n".join(orjson.dumps({**m, "messageId": f"i{n}"}) for n, m in enumerate([
        CARRIERS["member_no:M-7"], {"type": "track", "anonymousId": "y", "event": "E"}])))
    result = runner.invoke(cli_app, ["import", str(export), "-c", str(config), "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    table = {cells[0].strip(): cells[1].strip() for line in result.output.splitlines()
             if len(cells := line.strip("│ ").split("│")) == 2}
    assert (table["stored"], table["rejected: suppressed"]) == ("1", "1"), result.output
    result = runner.invoke(cli_app, ["privacy", "list", "--json", "--database-url", sqlite_url])
    [listed] = orjson.loads(result.output)
    assert (listed["regulation_type"], listed["subject_type"], listed["subject"], listed["requested_by"]) == (
        "suppress", "member_no", None, "cli:dpo")
