"""``traitsync privacy`` and ``traitsync tokens`` as an operator runs them, against a live server's store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.activation_flow.conftest import wait_for
from tests.ingest.conftest import LiveApp, start_live_app
from tests.test_server_auth import CONFIG
from traitsync.cli import app

runner = CliRunner()


@pytest.fixture
def live(sqlite_url: str) -> Iterator[LiveApp]:
    server = start_live_app(sqlite_url, CONFIG)
    yield server
    server.close()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_delete_from_the_shell_is_recorded_and_rebuild_agrees(live: LiveApp, sqlite_url: str, tmp_path: Path) -> None:
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    for user in ("ada", "bob"):
        body = {"userId": user, "event": "Order Completed"}
        assert httpx.post(live.base_url + "/v1/track", json=body, auth=("web-key", "")).status_code == 200
    traits = live.base_url + "/v1/spaces/spa_test/collections/users/profiles/user_id:{}/traits"
    assert wait_for(lambda: httpx.get(traits.format("ada"), auth=("profile-secret", "")).status_code == 200)

    code, out = cli("privacy", "delete", "user_id:ada", "--by", "dpo", "--database-url", sqlite_url)
    assert (code, out) == (0, "regulation 1: user_id deletion recorded; the workers carry it out (see "
                              "`traitsync privacy list`)\n")
    assert wait_for(lambda: httpx.get(traits.format("ada"), auth=("profile-secret", "")).status_code == 404)
    assert httpx.get(traits.format("bob"), auth=("profile-secret", "")).status_code == 200
    code, out = cli("privacy", "list", "--json", "--database-url", sqlite_url)
    [listed] = json.loads(out)
    assert (listed["requested_by"], listed["status"], listed["subject"]) == ("cli:dpo", "done", None)
    code, out = cli("identity", "rebuild", "-c", str(config), "--database-url", sqlite_url)
    assert code == 0, out

    code, out = cli("privacy", "delete", "nobody", "--database-url", sqlite_url)
    assert (code, out.strip()) == (2, "error: 'nobody' is not TYPE:VALUE (for example email:ada@example.com or "
                                      "user_id:42)")


def test_a_suppressed_person_is_not_imported(tmp_path: Path, sqlite_url: str, config_file: Path) -> None:
    assert cli("privacy", "suppress", "email:zed@example.com", "--database-url", sqlite_url)[0] == 0
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(m) for m in [
        {"type": "identify", "userId": "z", "traits": {"email": "zed@example.com"}, "messageId": "m1"},
        {"type": "track", "userId": "q", "event": "E", "messageId": "m2"}]))
    code, out = cli("import", str(path), "-c", str(config_file), "--database-url", sqlite_url)
    assert code == 0, out
    assert "suppressed" in out
    code, out = cli("log", "stats", "--database-url", sqlite_url)
    assert "events stored" in out and " 1 " in out.split("events stored")[1].splitlines()[0]


def test_tokens_rotate_without_a_restart(live: LiveApp, sqlite_url: str) -> None:
    code, out = cli("tokens", "create", "ops", "--role", "admin", "--database-url", sqlite_url)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("tsm_")
    url = live.base_url + "/api/v1/sources"
    assert wait_for(lambda: httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200)
    code, out = cli("tokens", "create", "ops", "--role", "read-only", "--database-url", sqlite_url)
    rotated = out.strip().splitlines()[-1]
    assert wait_for(lambda: httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 401)
    assert httpx.get(url, headers={"Authorization": f"Bearer {rotated}"}).status_code == 200
    regulation = httpx.post(live.base_url + "/api/v1/regulations", json={"regulation_type": "suppress",
                                                                          "subject": "user_id:x"},
                            headers={"Authorization": f"Bearer {rotated}"})
    assert (regulation.status_code, regulation.json()["code"]) == (403, "forbidden")
    assert cli("tokens", "revoke", "ops", "--database-url", sqlite_url)[0] == 0
    assert wait_for(lambda: httpx.get(url, headers={"Authorization": f"Bearer {rotated}"}).status_code == 401)
    code, out = cli("tokens", "list", "--database-url", sqlite_url)
    assert "ops" in out and "read-only" in out and token not in out and rotated not in out
