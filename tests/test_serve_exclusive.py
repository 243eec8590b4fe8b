"""A stage that must be alone on a store runs in one worker process, and another takes it over."""

from __future__ import annotations

import threading
import time

from traitsync.server.exclusive import Exclusive
from traitsync.store.database import Database


class _Stage:
    name = "stage"

    def __init__(self, running: list[str], me: str) -> None:
        self.running = running
        self.me = me

    def run(self, stop: threading.Event) -> None:
        self.running.append(self.me)
        try:
            stop.wait()
        finally:
            self.running.remove(self.me)


def _until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_one_instance_runs_and_the_other_takes_over_when_it_stops(pg_url: str) -> None:
    db = Database(pg_url)
    running: list[str] = []
    stops = {"a": threading.Event(), "b": threading.Event()}
    threads = {n: threading.Thread(target=Exclusive(_Stage(running, n), db, 1234, check_seconds=0.1).run,
                                   args=(stops[n],)) for n in stops}
    for t in threads.values():
        t.start()
    try:
        _until(lambda: len(running) == 1)
        time.sleep(0.5)
        assert len(running) == 1
        first = running[0]
        stops[first].set()  # that process stops (a killed one loses its session: the same for the lock)
        threads[first].join(10)
        other = "b" if first == "a" else "a"
        _until(lambda: running == [other], 5)
    finally:
        for s in stops.values():
            s.set()
        for t in threads.values():
            t.join(10)


def test_on_sqlite_the_stage_simply_runs(sqlite_url: str) -> None:
    running: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=Exclusive(_Stage(running, "a"), Database(sqlite_url), 1).run, args=(stop,))
    thread.start()
    _until(lambda: running == ["a"])
    stop.set()
    thread.join(10)
    assert running == []
