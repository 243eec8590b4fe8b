"""A fake ReSci ingestion endpoint: Segment-format identify/track messages (segment-spec.md 5.3)
checked against the Segment spec's required fields, Basic auth with the API key."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

PATH = "/segment/v1/ingest"
MESSAGE: dict[str, Any] = {
    "type": "object", "required": ["type", "messageId"],
    "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
    "properties": {"type": {"enum": ["identify", "track"]}, "userId": {"type": "string"},
                   "anonymousId": {"type": "string"}, "traits": {"type": "object"},
                   "properties": {"type": "object"}, "event": {"type": "string"}, "timestamp": {"type": "string"},
                   "context": {"type": "object"}, "messageId": {"type": "string"}},
    "if": {"properties": {"type": {"const": "track"}}}, "then": {"required": ["event", "properties"]},
    "else": {"required": ["traits"]},
}


def resci_fake(api_key: str) -> FakeVendor:
    expected = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()

    def ingest(seen: Seen, _m: re.Match[str]) -> Answer:
        if seen.header("Authorization") != expected:
            return Answer(401, {"message": "unauthorized"})
        return Answer(200, {"success": True})

    return FakeVendor([Route("POST", PATH, ingest, schema=MESSAGE)])
