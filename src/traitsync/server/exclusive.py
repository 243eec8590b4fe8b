"""One instance per store of a stage that must not run twice, whichever worker process runs it.

``serve --role worker`` can run on several machines against one PostgreSQL store: the engine
splits its work into partitions, identity serialises its chunks and delivery shares each
destination, but activation and the list scheduler expect to be alone on a store. Each is
wrapped here: a process runs it only while holding a session advisory lock (on a connection of
its own, checked every second), and the others wait to take over. A killed process's session
ends and its lock with it, so another process resumes the stage within about a second.

This guards against two processes running the stage side by side for good; it is not a fence
for each transaction (if only the lock's connection drops while the stage's own stays up, the
two may overlap for up to a second, and rely on the stage's idempotent writes). SQLite runs one
worker process: the stage runs as is.
"""

from __future__ import annotations

import threading

import structlog

from traitsync.store.database import Connection, Database
from traitsync.workers import Worker

log = structlog.get_logger("traitsync.exclusive")
_KEEPALIVES = ("SET tcp_keepalives_idle = 5", "SET tcp_keepalives_interval = 2", "SET tcp_keepalives_count = 3")


class Exclusive:
    """Run ``inner`` only while this process holds the advisory lock ``key`` (PostgreSQL)."""

    def __init__(self, inner: Worker, db: Database, key: int, *, check_seconds: float = 1.0) -> None:
        self.inner = inner
        self.db = db
        self.key = key
        self.check_seconds = check_seconds
        self.name = inner.name

    def _lock(self) -> Connection | None:
        """A connection holding the lock, or None if another process holds it."""
        conn = self.db.connect()
        try:
            for sql in _KEEPALIVES:
                conn.execute(sql)
            got = bool(conn.scalar("SELECT pg_try_advisory_lock(hashtext(current_schema()), ?)", (self.key,)))
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return None
        return conn

    def run(self, stop: threading.Event) -> None:
        if self.db.dialect != "postgresql":
            self.inner.run(stop)
            return
        while not stop.is_set():
            try:
                conn = self._lock()
            except Exception:
                log.exception("cannot reach the store to take the stage's lock", worker=self.name)
                conn = None
            if conn is None:
                stop.wait(self.check_seconds)
                continue
            log.info("running the stage for this store", worker=self.name)
            try:
                self._run_while_held(conn, stop)
            finally:
                conn.close()
            stop.wait(self.check_seconds)  # the stage stopped or the lock was lost: not in a tight loop

    def _run_while_held(self, conn: Connection, stop: threading.Event) -> None:
        held = threading.Event()  # set: stop the inner worker
        thread = threading.Thread(target=self.inner.run, args=(held,), name=f"traitsync-{self.name}", daemon=True)
        thread.start()
        try:
            while not stop.is_set() and thread.is_alive():
                stop.wait(self.check_seconds)
                try:
                    conn.scalar("SELECT 1")
                    conn.commit()
                except Exception:
                    log.warning("lost the stage's lock; stopping it here", worker=self.name)
                    return
        finally:
            held.set()
            thread.join()
