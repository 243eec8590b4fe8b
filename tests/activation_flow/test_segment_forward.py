"""The `segment` adapter reaches any Segment-compatible router: here, a second traitsync.

About 190 more event destinations are reachable this way: forward to Segment, RudderStack or
another traitsync, whose Tracking API validates each message exactly as Segment's does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.activation_flow.conftest import AUDIENCE, TRAIT, Receiver
from tests.ingest.conftest import start_live_app


def forward(endpoint: str) -> str:
    return f"""\
  - id: dst_router
    name: Router
    kind: segment
    settings: {{write_key: web-key, endpoint: "{endpoint}"}}
    connections:
      - computation: {AUDIENCE}
        send: [identify, track]
      - computation: {TRAIT}
        send: [identify]
"""


def test_forwarded_messages_land_in_the_routers_log_unchanged(flow_factory: Any, receiver: Receiver,
                                                              tmp_path: Path) -> None:
    router = start_live_app(f"sqlite:///{tmp_path / 'router.db'}")
    try:
        flow = flow_factory(forward(router.base_url))
        flow.identifier("p1", "user_id", "u1")
        flow.result("p1", AUDIENCE, True)
        flow.result("p1", TRAIT, 42)
        flow.run()
        sent = {r[0]: r[1] for r in flow.rows("SELECT message_id, state FROM delivery_outbox")}
        stored = router.runtime.event_log.recent_for_source("src_web", 50)
    finally:
        router.close()
    assert set(sent.values()) == {"delivered"} and len(sent) == 3
    by_id = {e.message_id: e.body for e in stored}
    assert set(by_id) == set(sent)
    kinds = sorted((b["type"], b.get("event", ""), b["userId"]) for b in by_id.values())
    assert kinds == [("identify", "", "u1"), ("identify", "", "u1"), ("track", "Audience Entered", "u1")]
    entered = next(b for b in by_id.values() if b["type"] == "track")
    assert entered["properties"] == {"audience_key": AUDIENCE, AUDIENCE: True}
    assert entered["context"]["personas"]["computation_key"] == AUDIENCE
    assert entered["integrations"] == {"All": False, "Router": True}
