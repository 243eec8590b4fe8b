"""Process layout of ``traitsync serve``: the API in one process, the workers in another.

CPython runs one thread at a time per process, so an API and four CPU-bound workers (identity,
engine, activation, delivery) in one process share a single core: under load the workers
starve the API and the API starves the workers. ``serve`` therefore starts the workers in a
supervised child process by default; the child is killed with its parent (Linux
``PR_SET_PDEATHSIG``), so a SIGKILL of ``serve`` never leaves an orphan delivering messages,
and it is restarted if it dies on its own.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
import time

import structlog

from traitsync.config import LoadedConfig
from traitsync.server.assemble import assemble
from traitsync.server.project import resolve_project
from traitsync.store import Database

log = structlog.get_logger("traitsync.processes")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the supervisor's stop() still ends the child on a clean exit
        pass


def run_workers_until_signalled(loaded: LoadedConfig, db: Database) -> None:
    """``serve --role worker``: run every background stage until SIGTERM or SIGINT, then drain."""
    runtime, _, _ = assemble(resolve_project(loaded), db, role="worker")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping workers", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runtime.start()
    log.info("workers running", workers=[s.name for s in runtime.services])
    stop.wait()
    runtime.stop()


class WorkerSupervisor:
    """Starts ``traitsync serve --role worker`` as a child, restarts it if it dies, stops it on exit."""

    def __init__(self, args: list[str]) -> None:
        self.command = [sys.executable, "-m", "traitsync.cli", "serve", "--role", "worker", *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="traitsync-supervisor", daemon=True)

    def start(self) -> WorkerSupervisor:
        self._spawn()
        self._monitor.start()
        return self

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(self.command, preexec_fn=_die_with_parent)
        log.info("worker process started", pid=self.proc.pid)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                log.error("worker process exited; restarting it", returncode=proc.returncode)
                time.sleep(1.0)
                if not self._stopping.is_set():
                    self._spawn()
            self._stopping.wait(0.5)

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
