"""A fake HubSpot CRM v3 contacts API: batch read / update / create with HubSpot's 207 and 400 shapes.

Schemas follow the CRM batch endpoints (reference destinations.md 5: <= 100 inputs, lowercase
property names, string/number values). A property the portal lacks fails the whole batch with
400 ``VALIDATION_ERROR``/``PROPERTY_DOESNT_EXIST``; an update of an unknown id answers 207
listing it under ``errors[].context.ids``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
VALUE = {"type": ["string", "number", "null"]}
PROPS = {"type": "object", "propertyNames": {"pattern": "^[a-z0-9_]+$"}, "additionalProperties": VALUE}
READ = {"type": "object", "required": ["inputs", "idProperty"], "additionalProperties": False,
        "properties": {"idProperty": {"const": "email"}, "properties": {"type": "array", "items": {"type": "string"}},
                       "propertiesWithHistory": {"type": "array"}, "archived": {"type": "boolean"},
                       "inputs": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
                           "type": "object", "required": ["id"], "additionalProperties": False,
                           "properties": {"id": {"type": "string"}}}}}}
UPDATE = {"type": "object", "required": ["inputs"], "additionalProperties": False,
          "properties": {"inputs": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
              "type": "object", "required": ["id", "properties"], "additionalProperties": False,
              "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"}, "properties": PROPS}}}}}
CREATE = {"type": "object", "required": ["inputs"], "additionalProperties": False,
          "properties": {"inputs": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
              "type": "object", "required": ["properties"], "additionalProperties": False,
              "properties": {"properties": {**PROPS, "required": ["email"]}, "associations": {"type": "array"}}}}}}


def rate_limited() -> Answer:
    return Answer(429, {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                        "errorType": "RATE_LIMIT", "correlationId": "c-1", "policyName": "TEN_SECONDLY_ROLLING"},
                  headers={"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "0",
                           "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})


class HubSpotFake:
    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {"known@x.io": {"id": "101", "properties": {}}}
        self.known_properties = {"email", "vip_buyers", "ltv_90d", "firstname"}
        self.fake = FakeVendor([
            Route("POST", "/crm/v3/objects/contacts/batch/read", self._read, schema=READ),
            Route("POST", "/crm/v3/objects/contacts/batch/update", self._update, schema=UPDATE),
            Route("POST", "/crm/v3/objects/contacts/batch/create", self._create, schema=CREATE),
            Route("GET", "/crm/v3/objects/contacts", lambda seen, _m: self._refused(seen) or Answer(
                200, {"results": [], "paging": {}})),
        ])

    @staticmethod
    def _refused(seen: Seen) -> Answer | None:
        if seen.header("Authorization") != f"Bearer {TOKEN}":
            return Answer(401, {"status": "error", "message": "Authentication credentials not found.",
                                "category": "INVALID_AUTHENTICATION", "correlationId": "c-2"})
        return None

    def _by_id(self, contact_id: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts.values() if c["id"] == contact_id), None)

    def _invalid(self, inputs: list[dict[str, Any]]) -> Answer | None:
        unknown = sorted({p for i in inputs for p in i["properties"]} - self.known_properties)
        if not unknown:
            return None
        return Answer(400, {"status": "error", "message": f"Property values were not valid: {unknown[0]}",
                            "correlationId": "c-3", "category": "VALIDATION_ERROR",
                            "errors": [{"message": f"Property \"{unknown[0]}\" does not exist",
                                        "code": "PROPERTY_DOESNT_EXIST", "context": {"propertyName": unknown}}]})

    def _read(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        results, missing = [], []
        for entry in seen.json()["inputs"]:
            contact = self.contacts.get(entry["id"].lower())
            if contact is None:
                missing.append(entry["id"])
            else:
                results.append({"id": contact["id"], "properties": {"email": entry["id"].lower(),
                                                                    "hs_object_id": contact["id"]},
                                "archived": False})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            body.update(numErrors=1, errors=[{"status": "error", "category": "OBJECT_NOT_FOUND",
                                              "message": "Could not get some CONTACT objects, they may be deleted "
                                                         "or not exist.", "context": {"ids": missing}}])
            return Answer(207, body)
        return Answer(200, body)

    def _update(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        inputs = seen.json()["inputs"]
        invalid = self._invalid(inputs)
        if invalid:
            return invalid
        results, missing = [], []
        for entry in inputs:
            contact = self._by_id(entry["id"])
            if contact is None:
                missing.append(entry["id"])
                continue
            contact["properties"].update(entry["properties"])
            results.append({"id": entry["id"], "properties": contact["properties"]})
        if missing:
            return Answer(207, {"status": "COMPLETE", "results": results, "numErrors": 1, "errors": [
                {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "resource not found",
                 "context": {"ids": missing}}]})
        return Answer(200, {"status": "COMPLETE", "results": results})

    def _create(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        inputs = seen.json()["inputs"]
        invalid = self._invalid(inputs)
        if invalid:
            return invalid
        for entry in inputs:
            email = entry["properties"]["email"].lower()
            if email in self.contacts:
                return Answer(409, {"status": "error", "category": "CONFLICT",
                                    "message": f"Contact already exists. Existing ID: {self.contacts[email]['id']}"})
        results = []
        for entry in inputs:
            email = entry["properties"]["email"].lower()
            contact = {"id": str(101 + len(self.contacts)), "properties": dict(entry["properties"])}
            self.contacts[email] = contact
            results.append(contact)
        return Answer(201, {"status": "COMPLETE", "results": results})


@contextmanager
def hubspot_fake() -> Iterator[HubSpotFake]:
    fake = HubSpotFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
