"""A fake Zendesk Support API: users/create_or_update, users/me.

Written from the Support API reference (reference destinations.md 8): Basic
``email/token:api_token`` or Bearer auth, ``name`` required to create a user, 422
``RecordInvalid`` with ``details``, 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

AGENT = "agent@acme.io"
API_TOKEN = "zd-api-token-6h2k9"
OAUTH = "zd-oauth-1b7f"
SCALAR = {"type": ["string", "number", "boolean", "null"]}
USER = {"type": "object", "required": ["user"], "additionalProperties": False, "properties": {"user": {
    "type": "object", "additionalProperties": False, "anyOf": [{"required": ["email"]}, {"required": ["external_id"]}],
    "properties": {"name": {"type": "string", "minLength": 1}, "email": {"type": "string"},
                   "external_id": {"type": "string"}, "phone": {"type": "string"}, "verified": {"type": "boolean"},
                   "organization_id": {"type": "integer"}, "time_zone": {"type": "string"},
                   "user_fields": {"type": "object", "propertyNames": {"pattern": "^[a-z0-9_]+$"},
                                   "additionalProperties": SCALAR}}}}}


def throttled(seconds: int = 1) -> Answer:
    return Answer(429, {"error": "TooManyRequests", "description": "Rate limit exceeded"},
                  headers={"Retry-After": str(seconds)})


class ZendeskFake:
    def __init__(self) -> None:
        self.users: dict[int, dict[str, Any]] = {
            1: {"id": 1, "name": "Known", "email": "known@x.io", "external_id": "u1", "user_fields": {}}}
        self.fake = FakeVendor([
            Route("POST", "/api/v2/users/create_or_update.json", self._upsert, schema=USER),
            Route("GET", "/api/v2/users/me.json", lambda seen, _m: self._refused(seen) or Answer(
                200, {"user": {"id": 9, "role": "admin"}})),
        ])

    @staticmethod
    def _refused(seen: Seen) -> Answer | None:
        basic = "Basic " + base64.b64encode(f"{AGENT}/token:{API_TOKEN}".encode()).decode()
        if seen.header("Authorization") not in (basic, f"Bearer {OAUTH}"):
            return Answer(401, {"error": "Couldn't authenticate you"})
        return None

    def _upsert(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        body = seen.json()["user"]
        email = body.get("email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", email):
            return Answer(422, {"error": "RecordInvalid", "description": "Record validation errors", "details": {
                "email": [{"description": f"Email: {email} is not properly formatted", "error": "InvalidFormat"}]}})
        match = next((u for u in self.users.values()
                      if (body.get("external_id") and u.get("external_id") == body["external_id"])
                      or (email and u.get("email") == email)), None)
        if match is None:
            if not body.get("name"):
                return Answer(422, {"error": "RecordInvalid", "description": "Record validation errors",
                                    "details": {"name": [{"description": "Name: is too short",
                                                          "error": "BlankValue"}]}})
            user = {"id": len(self.users) + 1, "user_fields": {}, **{k: v for k, v in body.items()
                                                                      if k != "user_fields"}}
            user["user_fields"] = dict(body.get("user_fields") or {})
            self.users[user["id"]] = user
            return Answer(201, {"user": user})
        match["user_fields"].update(body.get("user_fields") or {})
        match.update({k: v for k, v in body.items() if k != "user_fields"})
        return Answer(200, {"user": match})


@contextmanager
def zendesk_fake() -> Iterator[ZendeskFake]:
    fake = ZendeskFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
