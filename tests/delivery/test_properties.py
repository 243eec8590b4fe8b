"""Properties of outbox + worker under arbitrary faults (fake transport, real SQLite file)."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traitsync.delivery.backoff import Backoff
from traitsync.delivery.limiter import RateLimiter
from traitsync.delivery.outbox import IN_FLIGHT, TERMINAL_STATES, TRANSITIONS, Outbox
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.transport import TransportError
from traitsync.delivery.worker import DestinationWorker
from traitsync.destinations import get_destination
from traitsync.destinations.base import Request, Response
from traitsync.store import Database, migrate

_DIR = tempfile.TemporaryDirectory(prefix="traitsync-props-")
DB = Database(f"sqlite:///{Path(_DIR.name) / 'props.db'}")
_ids = itertools.count()


class FakeTransport:
    def __init__(self, faults: list[Any]) -> None:
        self.faults = faults
        self.received: list[dict[str, Any]] = []
        self.refused: list[str] = []

    def send(self, request: Request, timeout: float) -> Response:
        fault = self.faults.pop(0) if self.faults else 200
        if fault == "reset":
            raise TransportError("reset by peer", code="ECONNRESET")
        body = json.loads(request.body)
        items = body if isinstance(body, list) else [body]
        if fault == 200:
            self.received.extend(items)
        elif fault == 400:
            self.refused.extend(m["messageId"] for m in items)
        return Response(fault, {"retry-after": "0"} if fault == 429 else {})

    def close(self) -> None:
        return None


@pytest.fixture(scope="module", autouse=True)
def _migrated() -> None:
    migrate(DB)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=12),
       faults=st.lists(st.sampled_from([200, 429, 500, 503, "reset", 400]), max_size=30),
       batch=st.sampled_from([0, 1, 3]))
def test_nothing_lost_nothing_reordered(users: list[int], faults: list[Any], batch: int) -> None:
    dest = f"dst_{next(_ids)}"
    messages = [{"type": "identify", "userId": f"u{u}", "traits": {"n": i}, "messageId": f"{dest}_{i}"}
                for i, u in enumerate(users)]
    outbox = Outbox(DB)
    conn = DB.connect()
    with conn.transaction():
        for m in messages:
            outbox.enqueue(conn, dest, m["userId"], m)
    adapter = get_destination("webhook")
    transport = FakeTransport(list(faults))
    target = DeliveryTarget.simple(dest, adapter, adapter.parse_settings({"url": "http://x/", "batch_size": batch}),
                                   rate=1e6, batch_size=4)
    worker = DestinationWorker(DB, target, transport=transport, limiter=RateLimiter(1e6),
                               backoff=Backoff(base=0.0005, cap=0.001, max_attempts=1000, jitter=False),
                               poll_interval=0.001)
    worker.drain(30, include_retries=True)
    worker.close()
    final = dict(conn.fetchall("SELECT message_id, state FROM delivery_outbox WHERE destination_id = ?", (dest,)))
    conn.close()
    # Every message ends terminal: delivered once, or dead only because the receiver said 400.
    assert set(final.values()) <= {"delivered", "dead"}
    delivered = [m["messageId"] for m in transport.received]
    assert len(delivered) == len(set(delivered))
    assert set(delivered) == {k for k, v in final.items() if v == "delivered"}
    assert {k for k, v in final.items() if v == "dead"} == set(transport.refused)
    for u in set(users):
        sent_order = [m["traits"]["n"] for m in transport.received if m["userId"] == f"u{u}"]
        assert sent_order == sorted(sent_order)


def test_transition_table_is_closed_and_terminal_states_are_final() -> None:
    assert set(TRANSITIONS) == {"pending", "in_flight", "delivered", "retry_wait", "dead", "filtered"}
    for state, targets in TRANSITIONS.items():
        assert targets <= set(TRANSITIONS)
        if state in TERMINAL_STATES - {"dead"}:
            assert targets == frozenset()
    assert TRANSITIONS["dead"] == {"pending"}  # only replay revives
    assert TRANSITIONS[IN_FLIGHT] == {"delivered", "retry_wait", "dead", "pending"}
