"""The identity worker carries on by itself after its database connection is killed.

A PostgreSQL restart (or a failover) ends every session: the worker's connection is then
closed for good. The worker used to keep that connection, so each round after the outage
failed with "the connection is closed" and identity stopped for the life of the process.
Here the test terminates the worker's session from another connection while it runs (the
runtime's supervisor is not involved: the worker's own loop must recover).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg

from tests.activation_flow.conftest import wait_for
from tests.identity.conftest import PG_URL, Harness, PgSchema


def test_worker_reconnects_after_its_session_is_terminated() -> None:
    schema = PgSchema()
    harness = Harness(schema.db)
    harness.worker.error_pause = 0.05
    stop = threading.Event()
    thread = threading.Thread(target=harness.worker.run, args=(stop,), daemon=True)
    try:
        harness.send({"type": "identify", "userId": "u1"})
        thread.start()
        resolved: Callable[[str], bool] = lambda user: harness.profile_of("user_id", user) is not None  # noqa: E731
        assert wait_for(lambda: resolved("u1"), 20)
        assert harness.worker._conn is not None
        pid = harness.worker._conn.raw.info.backend_pid
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        harness.send({"type": "identify", "userId": "u2"})
        assert wait_for(lambda: resolved("u2"), 20), "identity did not resume after its session was killed"
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
        schema.drop()
