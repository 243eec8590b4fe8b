"""No secret appears in anything traitsync outputs: logs, errors, debugger views, metrics, CLI.

A whole flow runs in a real ``traitsync serve`` with debug logs: events (good, refused, with the
write key in the body), deliveries to a webhook that signs with a shared secret and sends a
vendor Authorization header, one destination whose vendor answers 401 echoing that header back,
failed logins, a regulation and a token rotation. Every byte the server logged or answered, and
every CLI output, is then scanned for each secret, in clear and base64-encoded.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.activation_flow.conftest import wait_for
from tests.conftest import ServerProcess
from tests.delivery.conftest import Receiver, Reply, receiver  # noqa: F401  (fixture)
from traitsync.cli import app

WRITE_KEY = "wk-SECRET-1f9c2a"
PROFILE_SECRET = "ps-SECRET-7b3e11"
ADMIN_TOKEN = "adm-SECRET-55d0e4"
READER_TOKEN = "rdr-SECRET-0c4d9a"
HOOK_SECRET = "hook-SECRET-31aa7f"
VENDOR_KEY = "vendor-SECRET-12e8b6"
SECRETS = (WRITE_KEY, PROFILE_SECRET, ADMIN_TOKEN, READER_TOKEN, HOOK_SECRET, VENDOR_KEY)

pytestmark = pytest.mark.slow  # spawns server subprocesses


def _config(url: str, refuse_url: str) -> str:
    return f"""\
space_id: spa_test
sources: [{{id: src_web, write_key: {WRITE_KEY}}}]
profile_api: {{access_secret: {PROFILE_SECRET}}}
management_api:
  token: {ADMIN_TOKEN}
  tokens: [{{name: dashboards, role: read-only, token: {READER_TOKEN}}}]
audiences:
  - key: buyers
    condition: {{performed: {{event: Order Completed, at_least: 1}}}}
destinations:
  - id: dst_hook
    kind: webhook
    settings: {{url: "{url}/ok", shared_secret: {HOOK_SECRET}, headers: {{Authorization: "Bearer {VENDOR_KEY}"}}}}
    connections: [{{computation: buyers, send: [identify, track]}}]
  - id: dst_refuses
    kind: webhook
    settings: {{url: "{refuse_url}/refuse", headers: {{X-Api-Key: {VENDOR_KEY}}}}}
    connections: [{{computation: buyers, send: [track]}}]
"""


def _forms(secret: str) -> list[str]:
    """The secret and the ways it could be encoded in a header or a log line."""
    return [secret, base64.b64encode(f"{secret}:".encode()).decode(), base64.b64encode(secret.encode()).decode()]


def test_no_output_of_a_full_flow_holds_a_secret(tmp_path: Path, receiver: Receiver) -> None:  # noqa: F811
    refuser = Receiver()  # a vendor that refuses the key, and quotes it back in its error
    refuser.rules.append(lambda _: Reply(401, body=f'{{"error": "bad key {VENDOR_KEY}"}}'.encode()))
    refuser.thread.start()
    config = tmp_path / "traitsync.yaml"
    config.write_text(_config(receiver.url, refuser.url))
    db_url = f"sqlite:///{tmp_path / 'traitsync.db'}"
    server = ServerProcess(config, db_url, log_level="debug")
    outputs: list[str] = []
    try:
        _run_flow(server.start(), receiver, refuser, outputs)
    finally:
        server.stop()
        refuser.close()
    logged = server.log_path.read_text()
    assert '"level": "debug"' in logged or "DEBUG" in logged  # every line, the libraries' included
    outputs.append(logged)
    runner = CliRunner()
    for args in (["log", "stats"], ["privacy", "list"], ["tokens", "list"], ["deliveries", "status"],
                 ["validate"], ["destinations", "check", "dst_hook"]):
        result = runner.invoke(app, [*args, "-c", str(config), *(["--database-url", db_url]
                                                                  if args[0] in ("log", "privacy", "tokens",
                                                                                 "deliveries") else [])])
        outputs.append(result.output)
    dump = subprocess.run([sys.executable, "-m", "traitsync.cli", "log", "export", "--database-url", db_url],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60)
    outputs += [dump.stdout, dump.stderr]
    everything = "\n".join(outputs)
    assert "Audience Entered" in everything and "suppressed" in everything  # the flow did run
    leaks = [everything[max(0, i - 150):i + 50] for secret in SECRETS for form in _forms(secret)
             if (i := everything.find(form)) >= 0]
    assert leaks == []


def _run_flow(server: ServerProcess, receiver: Receiver, refuser: Receiver,  # noqa: F811
              outputs: list[str]) -> None:
    base = server.base_url
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    reader = {"Authorization": f"Bearer {READER_TOKEN}"}

    def keep(response: httpx.Response) -> httpx.Response:
        outputs.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response

    keep(httpx.post(base + "/v1/track", json={"userId": "ada", "event": "Order Completed"}, auth=(WRITE_KEY, "")))
    keep(httpx.post(base + "/v1/identify", json={"userId": "ada", "writeKey": WRITE_KEY, "traits": "nope"}))
    keep(httpx.post(base + "/v1/batch", json={"writeKey": WRITE_KEY, "batch": [
        {"type": "track", "writeKey": WRITE_KEY}, {"type": "track", "userId": "bob", "event": "Order Completed"}]}))
    keep(httpx.post(base + "/v1/track", content=b"{not json", auth=(WRITE_KEY, "")))
    keep(httpx.post(base + "/v1/track", json={"userId": "x"}, auth=(WRITE_KEY + "x", "")))
    keep(httpx.get(base + "/api/v1/sources", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"}))
    keep(httpx.post(base + "/api/v1/regulations", json={"regulation_type": "suppress", "subject": "user_id:eve"},
                    headers=reader))
    keep(httpx.post(base + "/api/v1/regulations", json={"regulation_type": "suppress", "subject": "user_id:eve"},
                    headers=admin))
    assert wait_for(lambda: keep(httpx.post(base + "/v1/track", json={"userId": "eve", "event": "E"},
                                            auth=(WRITE_KEY, ""))).json().get("code") == "suppressed")
    assert wait_for(lambda: any(r.path == "/ok" for r in receiver.requests), timeout=30)
    assert wait_for(lambda: any(r.path == "/refuse" for r in refuser.requests), timeout=30)
    profile = base + "/v1/spaces/spa_test/collections/users/profiles/user_id:ada/"
    for view in ("traits?verbose=true", "external_ids", "events", "metadata", "links"):
        keep(httpx.get(profile + view, auth=(PROFILE_SECRET, "")))
    keep(httpx.get(profile + "traits", auth=(PROFILE_SECRET + "x", "")))
    for path in ("/api/v1/sources", "/api/v1/sources/src_web/debugger", "/api/v1/destinations",
                 "/api/v1/destinations/dst_hook/debugger", "/api/v1/destinations/dst_refuses/debugger",
                 "/api/v1/destinations/dst_refuses/delivery-overview", "/api/v1/computations",
                 "/api/v1/computations/buyers", "/api/v1/regulations", "/metrics"):
        keep(httpx.get(base + path, headers=reader))
    keep(httpx.get(base + "/openapi.json"))
    keep(httpx.get(base + "/healthz"))
