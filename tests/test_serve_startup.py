"""``traitsync serve`` starting up as a new user sees it: clear errors, and "listening" only when true."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASIC_CONFIG, free_port

BAD_DEFINITION = BASIC_CONFIG + """\
computed_traits:
  - key: total_revenue
    kind: aggregation
    event: Order Completed
    property: revenue
    function: summ
"""


def _traitsync(*args: str) -> list[str]:
    return [sys.executable, "-m", "traitsync.cli", *args]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("TRAITSYNC_DATABASE_URL", None)
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


def test_a_bad_definition_is_the_same_one_line_error_as_validate_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "traitsync.yaml").write_text(BAD_DEFINITION)
    validate = _run(_traitsync("validate"), tmp_path)
    serve = _run(_traitsync("serve", "--port", str(free_port())), tmp_path)
    expected = "error: traitsync.yaml:17 [computed_traits[0].function]: function must be one of: sum, avg, min, max\n"
    assert validate.returncode == 2 and validate.stderr == expected
    assert serve.returncode == 2
    assert serve.stderr == expected
    assert serve.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traitsync.yaml"]  # no .traitsync/ store


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "traitsync.yaml").write_text(BASIC_CONFIG)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        serve = _run(_traitsync("serve", "--port", str(port)), tmp_path)
    assert serve.returncode == 2
    assert serve.stderr == (f"error: cannot listen on 127.0.0.1:{port}: the port is already in use (another "
                            "traitsync, or another program); choose another with --port\n")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_listening_is_printed_once_the_port_answers_and_nothing_else_is_noise(tmp_path: Path, workers: int) -> None:
    (tmp_path / "traitsync.yaml").write_text(BASIC_CONFIG)
    port = free_port()
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("TRAITSYNC_DATABASE_URL", None)
    proc = subprocess.Popen(_traitsync("serve", "--port", str(port), "--workers", str(workers)),
                            cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"serve exited: {lines}"
            lines.append(line.rstrip("\n"))
            if "listening" in line:
                break
        # The moment it says so, the port answers (a request may wait for the app, never be refused).
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert lines[-1] == (f"traitsync listening on http://127.0.0.1:{port} (store: "
                         "sqlite:///.traitsync/traitsync.db, role: all)")
    noise = [line for line in lines if "alembic" in line or "Uvicorn" in line or line.startswith("INFO")]
    assert noise == []
