"""A fake Salesforce Marketing Cloud tenant: v2 token, data extension rowsets, contacts, journey events.

Schemas follow the REST reference (reference destinations.md 21). A rowset behaves like SFMC's:
rows are stored in order until the first row naming a column the data extension lacks; that
row and every later one are rejected with a 400 that does not say which row it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CLIENT_ID = "sfmc-client-1"
CLIENT_SECRET = "sfmc-secret-0c4d"
DE_KEY = "engage_profiles"
EVENT_KEY = "APIEvent-9a1c"
SCALAR = {"type": ["string", "number", "boolean", "null"]}
TOKEN = {"type": "object", "required": ["grant_type", "client_id", "client_secret"], "additionalProperties": False,
         "properties": {"grant_type": {"const": "client_credentials"}, "client_id": {"type": "string"},
                        "client_secret": {"type": "string"}, "account_id": {"type": "string"},
                        "scope": {"type": "string"}}}
ROWSET = {"type": "array", "minItems": 1, "maxItems": 50, "items": {
    "type": "object", "required": ["keys", "values"], "additionalProperties": False,
    "properties": {"keys": {"type": "object", "minProperties": 1, "additionalProperties": SCALAR},
                   "values": {"type": "object", "additionalProperties": SCALAR}}}}
EVENT = {"type": "object", "required": ["ContactKey", "EventDefinitionKey", "Data"], "additionalProperties": False,
         "properties": {"ContactKey": {"type": "string", "minLength": 1}, "EventDefinitionKey": {"type": "string"},
                        "Data": {"type": "object", "additionalProperties": SCALAR}}}
CONTACT = {"type": "object", "required": ["contactKey", "attributeSets"], "properties": {
    "contactKey": {"type": "string", "minLength": 1},
    "attributeSets": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name", "items"], "properties": {
            "name": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object", "required": ["values"], "properties": {
                "values": {"type": "array", "items": {"type": "object", "required": ["name", "value"],
                                                      "properties": {"name": {"type": "string"},
                                                                     "value": SCALAR}}}}}}}}}}}


def unable_to_save(field: str | None = None) -> Answer:
    body: dict[str, Any] = {"message": "Unable to save rows for data extension ID 7c1b", "errorcode": 10006,
                            "documentation": ""}
    if field is not None:
        body["additionalErrors"] = [{"message": f"The field {field} does not exist", "errorcode": 10000}]
    return Answer(400, body)


class SfmcFake:
    def __init__(self) -> None:
        self.issued = 0
        self.live: str | None = None
        self.columns = {"ContactKey", "email", "vip_buyers", "ltv_90d"}
        self.rows: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.contacts: dict[str, list[dict[str, Any]]] = {}
        self.fake = FakeVendor([
            Route("POST", "/v2/token", self._token, schema=TOKEN),
            Route("POST", r"/hub/v1/dataevents/key:([^/]+)/rowset", self._rowset, schema=ROWSET),
            Route("POST", "/interaction/v1/events", self._event, schema=EVENT),
            Route("POST", "/contacts/v1/contacts", self._contact, schema=CONTACT),
            Route("GET", "/platform/v1/endpoints", lambda seen, _m: Answer(200, {"items": []})
                  if self._authorised(seen) else self._refused()),
        ])

    def _token(self, seen: Seen, _m: re.Match[str]) -> Answer:
        body = seen.json()
        if (body["client_id"], body["client_secret"]) != (CLIENT_ID, CLIENT_SECRET):
            return Answer(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        self.issued += 1
        self.live = f"sfmc-token-{self.issued}"
        return Answer(200, {"access_token": self.live, "token_type": "Bearer", "expires_in": 1079,
                            "scope": "data_extensions_write journeys_execute",
                            "soap_instance_url": f"{self.fake.url}/", "rest_instance_url": f"{self.fake.url}/"})

    def _authorised(self, seen: Seen) -> bool:
        return self.live is not None and seen.header("Authorization") == f"Bearer {self.live}"

    @staticmethod
    def _refused() -> Answer:
        return Answer(401, {"documentation": "", "errorcode": 0, "message": "Not Authorized"})

    def _rowset(self, seen: Seen, match: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return self._refused()
        if match.group(1) != DE_KEY:
            return Answer(404, {"message": "Data extension not found", "errorcode": 10001})
        for row in seen.json():
            unknown = sorted((set(row["keys"]) | set(row["values"])) - self.columns)
            if unknown:
                return unable_to_save(unknown[0])
            key = "|".join(str(v) for v in row["keys"].values())
            self.rows.setdefault(key, {}).update(row["values"])
        return Answer(200, seen.json())

    def _event(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return self._refused()
        body = seen.json()
        if body["EventDefinitionKey"] != EVENT_KEY:
            return Answer(400, {"message": "Event definition key not found", "errorcode": 30000})
        self.events.append(body)
        return Answer(201, {"eventInstanceId": f"evt-{len(self.events)}"})

    def _contact(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return self._refused()
        body = seen.json()
        self.contacts[body["contactKey"]] = body["attributeSets"]
        return Answer(200, {"operationStatus": "OK", "rowsAffected": 1, "contactKey": body["contactKey"],
                            "contactID": 1, "hasErrors": False, "resultMessages": []})


@contextmanager
def sfmc_fake() -> Iterator[SfmcFake]:
    fake = SfmcFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
