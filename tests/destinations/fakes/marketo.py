"""A fake Marketo REST API: identity token, lead upsert, custom activities, describe.

Request bodies are validated against schemas written from Marketo's REST reference (reference
destinations.md 17). Like Marketo it answers HTTP 200 with ``success:false`` and ``errors``
for whole-request failures (601 when the token is not the one it issued last) and per-record
``status:"skipped"`` with ``reasons`` (emails in ``state["reject"]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CLIENT_ID = "mkto-client"
CLIENT_SECRET = "mkto-secret-5f1e9c"

LEAD = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "minLength": 3}},
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}
UPSERT = {"type": "object", "required": ["action", "lookupField", "input"], "additionalProperties": False,
          "properties": {"action": {"enum": ["createOrUpdate", "createOnly", "updateOnly", "createDuplicate"]},
                         "lookupField": {"type": "string"}, "partitionName": {"type": "string"},
                         "input": {"type": "array", "minItems": 1, "maxItems": 300, "items": LEAD}}}
ACTIVITY = {"type": "object", "additionalProperties": False,
            "required": ["leadId", "activityDate", "activityTypeId", "primaryAttributeValue"],
            "properties": {"leadId": {"type": "integer"}, "activityDate": {"type": "string",
                                                                           "pattern": r"^\d{4}-\d\d-\d\dT"},
                           "activityTypeId": {"type": "integer"}, "primaryAttributeValue": {"type": "string"},
                           "apiName": {"type": "string"}, "status": {"type": "string"},
                           "attributes": {"type": "array", "items": {
                               "type": "object", "required": ["name", "value"], "additionalProperties": False,
                               "properties": {"name": {"type": "string"}, "apiName": {"type": "string"},
                                              "value": {}}}}}}
ACTIVITIES = {"type": "object", "required": ["input"], "additionalProperties": False,
              "properties": {"input": {"type": "array", "minItems": 1, "maxItems": 300, "items": ACTIVITY}}}


def error(code: str, message: str = "") -> Answer:
    return Answer(200, {"requestId": "e42b#1", "success": False, "errors": [{"code": code, "message": message}]})


class MarketoFake:
    def __init__(self) -> None:
        self.issued = 0
        self.secret = CLIENT_SECRET
        self.live: str | None = None
        self.leads: dict[str, int] = {"known@x.io": 1001}
        self.reject: set[str] = set()
        self.fake = FakeVendor([
            Route("GET", "/identity/oauth/token", self._token),
            Route("POST", "/rest/v1/leads.json", self._upsert, schema=UPSERT),
            Route("POST", "/rest/v1/activities/external.json", self._activities, schema=ACTIVITIES),
            Route("GET", "/rest/v1/leads/describe.json", self._describe),
        ])

    @property
    def url(self) -> str:
        return self.fake.url

    def _token(self, seen: Seen, _m: re.Match[str]) -> Answer:
        query = {k: v[0] for k, v in seen.query.items()}
        if query.get("grant_type") != "client_credentials":
            self.fake.violations.append(f"token: grant_type {query.get('grant_type')!r}")
        if query.get("client_id") != CLIENT_ID or query.get("client_secret") != self.secret:
            return Answer(401, {"error": "unauthorized", "error_description": "Bad client credentials"})
        self.issued += 1
        self.live = f"mkto-token-{self.issued}"
        return Answer(200, {"access_token": self.live, "token_type": "bearer", "expires_in": 3599,
                            "scope": "api@example.com"})

    def _authorised(self, seen: Seen) -> bool:
        return self.live is not None and seen.header("Authorization") == f"Bearer {self.live}"

    def _upsert(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        result: list[dict[str, Any]] = []
        for seq, lead in enumerate(seen.json()["input"]):
            email = lead["email"]
            if email in self.reject:
                result.append({"seq": seq, "status": "skipped",
                               "reasons": [{"code": "1003", "message": "Value for field 'vip' is invalid"}]})
                continue
            status = "updated" if email in self.leads else "created"
            self.leads.setdefault(email, 1001 + len(self.leads))
            result.append({"seq": seq, "id": self.leads[email], "status": status})
        return Answer(200, {"requestId": "e42b#2", "success": True, "result": result})

    def _activities(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        known = set(self.leads.values())
        result = [({"seq": seq, "id": 9000 + seq, "status": "added"} if a["leadId"] in known else
                   {"seq": seq, "status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]})
                  for seq, a in enumerate(seen.json()["input"])]
        return Answer(200, {"requestId": "e42b#3", "success": True, "result": result})

    def _describe(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        return Answer(200, {"requestId": "e42b#4", "success": True, "result": [{"id": 2, "rest": {"name": "email"}}]})


@contextmanager
def marketo_fake() -> Iterator[MarketoFake]:
    fake = MarketoFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
