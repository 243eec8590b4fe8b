"""A full disk under load, for SQLite: a real filesystem that runs out of space, then gets it back.

The store lives on a small ``tmpfs`` mounted for the test (the test runs as root; it fails,
never skips, when it cannot mount). Under the load of ``load.py`` the test fills the rest of the
filesystem with a file until the kernel says ENOSPC, so every write of the server (the log's
commits, the WAL, the workers' checkpoints and outbox) meets a really full disk. It checks:

* the Tracking API answers 503 ``storage_unavailable`` with ``Retry-After`` (and ``/healthz``
  503) while it cannot store, and every batch it answered 200 was really stored: after the disk
  comes back, every acknowledged ``messageId`` is in the event log;
* the workers (identity, engine, activation, delivery, all in the supervised worker process)
  keep running or restart by themselves: once the file is deleted, with no restart by the test,
  every acknowledged change reaches the destination, entries before exits (``load.py``).
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.activation_flow.conftest import wait_for
from tests.chaos.load import Load, chaos_config, check_memberships, wait_delivered
from tests.conftest import ServerProcess
from tests.delivery.conftest import Receiver, receiver  # noqa: F401  (fixture)
from traitsync.log import EventLog
from traitsync.store import Database

pytestmark = pytest.mark.slow  # spawns server subprocesses

DISK_SIZE = "24m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh ``tmpfs`` of ``DISK_SIZE``, unmounted afterwards whatever happened."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"this test needs to mount a tmpfs (run it as root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        for _ in range(20):  # the server processes may take a moment to release their files
            if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(path: Path) -> int:
    """Write ``path`` until the filesystem is full (ENOSPC); returns the bytes written."""
    chunk = b"\0" * 65536
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            try:
                n = os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]  # fill the last pages too
                continue
            written += n
    finally:
        os.close(fd)


def test_full_disk_under_load_answers_503_and_every_worker_recovers(
        small_disk: Path, server_factory: type[ServerProcess], tmp_path: Path,
        receiver: Receiver) -> None:  # noqa: F811
    config_path = tmp_path / "traitsync.yaml"
    config_path.write_text(chaos_config(receiver.url))
    sqlite_url = f"sqlite:///{small_disk / 'traitsync.db'}"
    server = server_factory(config_path, sqlite_url).start(timeout=90)  # its log is outside the small disk
    filler = small_disk / "filler"
    with Load(server.base_url, receiver) as load:
        load.wait_acked(100, refunded=20)  # the workers are running and exits flow
        filled = fill(filler)
        assert wait_for(lambda: load.statuses.get(503, 0) >= 3, 60), (load.statuses, filled)
        refusal = load.refusals[0]
        assert refusal.headers["Retry-After"] == "5"
        assert refusal.json() == {
            "code": "storage_unavailable",
            "message": "The event log cannot commit right now; nothing from this request was stored. "
                       "Retry after the delay."}
        health = httpx.get(server.base_url + "/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        time.sleep(3)  # the workers meet the full disk too
        filler.unlink()
        during = len(load.acked)
        load.wait_acked(during + 100, refunded=len(load.refunded) + 20)  # ingestion resumed by itself
    assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
    stored = {e.message_id for e in EventLog(Database(sqlite_url)).read(0, 1_000_000)}
    unstored = [u for u in load.acked if f"m-{u}" not in stored]
    unstored += [u for u in load.refunded if f"r-{u}" not in stored]
    assert not unstored, f"{len(unstored)} acknowledged events are not in the log: {unstored[:10]}"
    wait_delivered(load, receiver)
    entries, exits = check_memberships(load, receiver)
    print(f"full disk: {filled} bytes filled; {len(load.acked)} acknowledged buyers, {len(load.refunded)} "
          f"refunded; {entries} entries and {exits} exits delivered; statuses {load.statuses}")
    server.stop()
