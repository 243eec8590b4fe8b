"""A fake Mixpanel ingestion API (reference destinations.md 23, after the ``ingestion.openapi.yaml``
request schema): ``/import?strict=1`` needs ``time``, ``distinct_id`` and ``$insert_id`` (36
characters of letters, digits and ``-``) on every event and Basic auth; ``/engage`` takes the
project token in each update."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

IMPORT: dict[str, Any] = {
    "type": "array", "minItems": 1, "maxItems": 2000, "items": {
        "type": "object", "required": ["event", "properties"], "additionalProperties": False,
        "properties": {"event": {"type": "string", "minLength": 1}, "properties": {
            "type": "object", "required": ["time", "distinct_id", "$insert_id"],
            "properties": {"time": {"type": "integer"}, "distinct_id": {"type": "string", "minLength": 1},
                           "$insert_id": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,36}$"}}}}}}
ENGAGE: dict[str, Any] = {
    "type": "array", "minItems": 1, "maxItems": 2000, "items": {
        "type": "object", "required": ["$token", "$distinct_id"],
        "properties": {"$token": {"type": "string"}, "$distinct_id": {"type": "string"},
                       "$set": {"type": "object"}, "$set_once": {"type": "object"}, "$unset": {"type": "array"}}}}


def mixpanel_fake(token: str, secret: str) -> FakeVendor:
    def imported(seen: Seen, _m: re.Match[str]) -> Answer:
        raw = (seen.header("Authorization") or "").removeprefix("Basic ")
        try:
            user = base64.b64decode(raw).decode().split(":", 1)[0]
        except ValueError:
            user = ""
        if user not in (secret, token) or seen.query.get("strict") != ["1"]:
            return Answer(401, {"code": 401, "error": "Unauthorized, invalid project secret", "status": 0})
        body = seen.json()
        return Answer(200, {"code": 200, "num_records_imported": len(body), "status": "OK"})

    def engage(seen: Seen, _m: re.Match[str]) -> Answer:
        if any(u["$token"] != token for u in seen.json()):
            return Answer(200, {"status": 0, "error": "token, missing or empty"})
        return Answer(200, {"status": 1, "error": None})

    return FakeVendor([Route("POST", "/import", imported, schema=IMPORT), Route("POST", "/engage", engage,
                                                                               schema=ENGAGE)])
