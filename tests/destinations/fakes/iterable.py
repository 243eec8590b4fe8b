"""A fake Iterable API: users/update, events/track and their bulk forms, checked against the
documented bodies (reference destinations.md 3): ``Api-Key`` header, an email or userId on every
user and event, ``createdAt`` in unix seconds, at most 1,000 users/events per bulk request."""

from __future__ import annotations

import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

_ID_PROPS: dict[str, Any] = {"email": {"type": "string", "pattern": "^[^A-Z\\s]+@[^A-Z\\s]+$"},
                             "userId": {"type": "string", "minLength": 1, "pattern": "^\\S(.*\\S)?$"}}
_HAS_ID = {"anyOf": [{"required": ["email"]}, {"required": ["userId"]}]}

USER: dict[str, Any] = {
    "type": "object", "additionalProperties": False, **_HAS_ID,
    "properties": {**_ID_PROPS, "dataFields": {"type": "object"}, "preferUserId": {"type": "boolean"},
                   "mergeNestedObjects": {"type": "boolean"}},
}
EVENT: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["eventName"], **_HAS_ID,
    "properties": {**_ID_PROPS, "eventName": {"type": "string", "minLength": 1}, "id": {"type": "string"},
                   "createdAt": {"type": "integer", "minimum": 1_000_000_000, "maximum": 9_999_999_999},
                   "dataFields": {"type": "object"}, "campaignId": {"type": "integer"},
                   "templateId": {"type": "integer"}},
}
BULK_UPDATE = {"type": "object", "required": ["users"], "additionalProperties": False,
               "properties": {"users": {"type": "array", "minItems": 1, "maxItems": 1000, "items": USER},
                              "updateOnly": {"type": "boolean"}}}
TRACK_BULK = {"type": "object", "required": ["events"], "additionalProperties": False,
              "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": EVENT}}}

SUCCESS = {"msg": "", "code": "Success", "params": None}


def iterable_fake(api_key: str, *, delay: float = 0.0) -> FakeVendor:
    def keyed(answer: Any) -> Any:
        def handler(seen: Seen, _m: re.Match[str]) -> Answer:
            if seen.header("Api-Key") != api_key:
                return Answer(401, {"msg": "Invalid API key", "code": "BadApiKey", "params": None})
            return answer(seen)
        return handler

    def bulk(kind: str) -> Any:
        return lambda seen: Answer(200, {"successCount": len(seen.json()[kind]), "failCount": 0})

    return FakeVendor([
        Route("POST", "/api/users/update", keyed(lambda _s: Answer(200, SUCCESS)), schema=USER),
        Route("POST", "/api/events/track", keyed(lambda _s: Answer(200, SUCCESS)), schema=EVENT),
        Route("POST", "/api/users/bulkUpdate", keyed(bulk("users")), schema=BULK_UPDATE),
        Route("POST", "/api/events/trackBulk", keyed(bulk("events")), schema=TRACK_BULK),
        Route("GET", "/api/channels", keyed(lambda _s: Answer(200, {"channels": []}))),
    ], delay=delay)
