"""Segment Tracking API forwarder: /v1/batch with Basic auth."""

from __future__ import annotations

import base64
import json

from traitsync.destinations.base import items_of
from traitsync.destinations.segment import DESTINATION, MAX_BATCH, SegmentSettings, build


def test_batch_request_with_basic_auth() -> None:
    msgs = [{"type": "identify", "userId": f"u{i}", "messageId": f"m{i}"} for i in range(3)]
    s = SegmentSettings.model_validate({"write_key": "wk_123", "endpoint": "http://127.0.0.1:8088/"})
    [req] = build(items_of(msgs), s)
    assert (req.method, req.url, req.indices) == ("POST", "http://127.0.0.1:8088/v1/batch", (0, 1, 2))
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"wk_123:").decode()
    assert json.loads(req.body) == {"batch": msgs}


def test_default_host_and_batch_caps() -> None:
    s = SegmentSettings.model_validate({"write_key": "k"})
    msgs = [{"type": "track", "event": "E", "userId": "u", "messageId": str(i)} for i in range(MAX_BATCH + 1)]
    reqs = build(items_of(msgs), s)
    assert reqs[0].url == "https://api.segment.io/v1/batch"
    assert [len(r.indices) for r in reqs] == [MAX_BATCH, 1]
    big = [{"type": "track", "userId": "u", "messageId": str(i), "properties": {"x": "y" * 30_000}}
           for i in range(40)]
    reqs = build(items_of(big), s)
    assert all(len(r.body) <= 500 * 1024 for r in reqs)
    assert sum(len(r.indices) for r in reqs) == 40 and len(reqs) == 3


def test_capabilities() -> None:
    assert DESTINATION.name == "Segment" and DESTINATION.modes == {"event"}
    assert not DESTINATION.supports({"type": "audience_list"})
