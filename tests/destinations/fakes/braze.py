"""A fake Braze REST endpoint: ``POST /users/track`` validated against the documented request.

The schema is written from Braze's /users/track reference (reference destinations.md 2): at most
75 objects in total, every object carries exactly one identifier, events carry ``name`` and an
ISO-8601 ``time``. A wrong key answers 401 like Braze. Answers are 201 with the
``*_processed`` counters; tests script partial failures and 429s with ``fake.script``.
"""

from __future__ import annotations

import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

_IDENTIFIER: dict[str, Any] = {
    "oneOf": [
        {"required": ["external_id"]},
        {"required": ["user_alias"]},
        {"required": ["braze_id"]},
        {"required": ["email"], "not": {"anyOf": [{"required": ["external_id"]}, {"required": ["user_alias"]},
                                                   {"required": ["braze_id"]}]}},
    ],
}
_ALIAS = {"type": "object", "required": ["alias_name", "alias_label"], "additionalProperties": False,
          "properties": {"alias_name": {"type": "string", "minLength": 1},
                         "alias_label": {"type": "string", "minLength": 1}}}
_ID_PROPS = {"external_id": {"type": "string", "minLength": 1}, "user_alias": _ALIAS,
             "braze_id": {"type": "string"}, "email": {"type": "string"},
             "_update_existing_only": {"type": "boolean"}}

USERS_TRACK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "attributes": {"type": "array", "minItems": 1, "maxItems": 75,
                       "items": {"type": "object", "properties": _ID_PROPS, **_IDENTIFIER}},
        "events": {"type": "array", "minItems": 1, "maxItems": 75, "items": {
            "type": "object", "required": ["name", "time"], **_IDENTIFIER,
            "additionalProperties": False,
            "properties": {**_ID_PROPS, "app_id": {"type": "string"}, "name": {"type": "string", "minLength": 1},
                           "time": {"type": "string",
                                    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"},
                           "properties": {"type": "object"}}}},
        "purchases": {"type": "array", "maxItems": 75},
    },
}


def braze_fake(api_key: str) -> FakeVendor:
    def track(seen: Seen, _m: re.Match[str]) -> Answer:
        if seen.header("Authorization") != f"Bearer {api_key}":
            return Answer(401, {"message": "Invalid API key: ***"})
        body = seen.json()
        objects = len(body.get("attributes", [])) + len(body.get("events", [])) + len(body.get("purchases", []))
        if objects > 75:
            return Answer(400, {"message": "Too many objects"})
        return Answer(201, {"message": "success", "attributes_processed": len(body.get("attributes", [])),
                            "events_processed": len(body.get("events", []))})

    return FakeVendor([Route("POST", "/users/track", track, schema=USERS_TRACK)])
