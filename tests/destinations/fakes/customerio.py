"""A fake Customer.io Track API v2 (reference destinations.md 4): Basic site_id:api_key,
``/api/v2/entity`` and ``/api/v2/batch`` bodies checked against the documented shapes."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

ENTITY: dict[str, Any] = {
    "type": "object", "required": ["type", "action", "identifiers"],
    "properties": {
        "type": {"const": "person"},
        "action": {"enum": ["identify", "event", "delete", "merge", "add_relationships"]},
        "identifiers": {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                        "properties": {"id": {"type": "string", "maxLength": 150},
                                       "email": {"type": "string"}, "cio_id": {"type": "string"}}},
        "attributes": {"type": "object"}, "timestamp": {"type": "integer"},
        "name": {"type": "string", "minLength": 1, "maxLength": 100}, "id": {"type": "string"},
    },
    "if": {"properties": {"action": {"const": "event"}}}, "then": {"required": ["name"]},
}
BATCH = {"type": "object", "required": ["batch"], "additionalProperties": False,
         "properties": {"batch": {"type": "array", "minItems": 1, "items": ENTITY}}}


def customerio_fake(site_id: str, api_key: str) -> FakeVendor:
    expected = "Basic " + base64.b64encode(f"{site_id}:{api_key}".encode()).decode()

    def handler(seen: Seen, _m: re.Match[str]) -> Answer:
        if seen.header("Authorization") != expected:
            return Answer(401, {"meta": {"error": "Unauthorized request"}})
        if len(seen.body) > 500 * 1024:
            return Answer(413, {"meta": {"error": "too large"}})
        return Answer(200, {})

    return FakeVendor([Route("POST", "/api/v2/entity", handler, schema=ENTITY),
                       Route("POST", "/api/v2/batch", handler, schema=BATCH),
                       Route("GET", "/auth", handler)])
