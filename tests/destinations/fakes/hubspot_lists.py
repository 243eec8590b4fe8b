"""A fake HubSpot account for static contact lists: lists v3, contact batch upsert/read, memberships.

Bodies are validated against JSON Schemas written from HubSpot's CRM v3 reference (reference
section 5; HubSpot publishes no OpenAPI document we could use): ``POST /crm/v3/lists {name,
objectTypeId: "0-1", processingType}``, ``GET /crm/v3/lists/object-type-id/0-1/name/<name>``,
``POST /crm/v3/objects/contacts/batch/upsert|read`` (1..100 inputs), ``PUT
/crm/v3/lists/<id>/memberships/add-and-remove``. Like HubSpot, a batch with an input it refuses
answers 207 with ``errors[].context.ids`` naming it (and quoting the email in the message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

TOKEN = "pat-na1-fake-hubspot-token"
EMAIL = {"type": "string", "minLength": 3, "maxLength": 254}
CREATE_LIST = {"type": "object", "required": ["name", "objectTypeId", "processingType"], "additionalProperties": False,
               "properties": {"name": {"type": "string", "minLength": 1}, "objectTypeId": {"const": "0-1"},
                              "processingType": {"enum": ["MANUAL", "DYNAMIC", "SNAPSHOT"]}}}
UPSERT = {"type": "object", "required": ["inputs"], "additionalProperties": False, "properties": {
    "inputs": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
        "type": "object", "required": ["idProperty", "id", "properties"], "additionalProperties": False,
        "properties": {"idProperty": {"const": "email"}, "id": EMAIL,
                       "properties": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}
READ = {"type": "object", "required": ["inputs", "idProperty"], "additionalProperties": False, "properties": {
    "idProperty": {"const": "email"}, "properties": {"type": "array", "items": {"type": "string"}},
    "inputs": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
        "type": "object", "required": ["id"], "additionalProperties": False, "properties": {"id": EMAIL}}}}}
RECORD_IDS = {"type": "array", "minItems": 1, "maxItems": 100000, "items": {"type": "string", "pattern": r"^\d+$"}}
MEMBERSHIPS = {"type": "object", "minProperties": 1, "additionalProperties": False,
               "properties": {"recordIdsToAdd": RECORD_IDS, "recordIdsToRemove": RECORD_IDS}}


@dataclass
class HubSpotListsFake:
    fake: FakeVendor
    lists: dict[str, dict[str, object]] = field(default_factory=dict)  # list id -> {name, members}
    contacts: dict[str, str] = field(default_factory=dict)  # email -> record id
    #: Emails HubSpot refuses in an upsert (an invalid address to it).
    invalid: set[str] = field(default_factory=set)
    lists_made: int = 0

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()

    def emails_in(self, list_id: str) -> set[str]:
        by_id = {v: k for k, v in self.contacts.items()}
        members = self.lists[list_id]["members"]
        assert isinstance(members, set)
        return {by_id[r] for r in members}


def hubspot_lists_fake() -> HubSpotListsFake:
    state: HubSpotListsFake

    def denied(seen: Seen) -> Answer | None:
        if seen.header("Authorization") != f"Bearer {TOKEN}":
            return Answer(401, {"status": "error", "message": "Authentication credentials not found.",
                                "category": "INVALID_AUTHENTICATION"})
        return None

    def find(seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        name = unquote(m.group(1))
        for list_id, data in state.lists.items():
            if data["name"] == name:
                return Answer(200, {"list": {"listId": list_id, "name": name, "objectTypeId": "0-1"}})
        return Answer(404, {"status": "error", "message": "List not found", "category": "OBJECT_NOT_FOUND"})

    def create(seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        name = seen.json()["name"]
        if any(d["name"] == name for d in state.lists.values()):
            return Answer(400, {"status": "error", "message": "A list with this name exists", "category":
                                "VALIDATION_ERROR"})
        state.lists_made += 1
        list_id = str(100 + state.lists_made)
        state.lists[list_id] = {"name": name, "members": set()}
        return Answer(200, {"list": {"listId": list_id, "name": name, "objectTypeId": "0-1",
                                     "processingType": "MANUAL"}})

    def contact(record: str, email: str) -> dict[str, object]:
        return {"id": record, "properties": {"email": email, "hs_object_id": record}}

    def batch(results: list[dict[str, object]], errors: list[dict[str, object]]) -> Answer:
        body: dict[str, object] = {"status": "COMPLETE", "results": results}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return Answer(207, body)
        return Answer(200, body)

    def upsert(seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        results, errors = [], []
        for one in seen.json()["inputs"]:
            email = one["id"]
            if email in state.invalid:
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": f"Email address {email} is invalid", "context": {"ids": [email]}})
                continue
            record = state.contacts.setdefault(email, str(5000 + len(state.contacts) + 1))
            results.append(contact(record, email))
        return batch(results, errors)

    def read(seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        results, errors = [], []
        for one in seen.json()["inputs"]:
            email = one["id"]
            if email in state.contacts:
                results.append(contact(state.contacts[email], email))
            else:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some "
                               "CONTACT objects, they may be deleted or not exist.", "context": {"ids": [email]}})
        return batch(results, errors)

    def memberships(seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        data = state.lists.get(m.group(1))
        if data is None:
            return Answer(404, {"status": "error", "message": "List does not exist", "category": "OBJECT_NOT_FOUND"})
        members = data["members"]
        assert isinstance(members, set)
        body = seen.json()
        known = set(state.contacts.values())
        added = [r for r in body.get("recordIdsToAdd", []) if r in known and r not in members]
        removed = [r for r in body.get("recordIdsToRemove", []) if r in members]
        members.update(added)
        members.difference_update(removed)
        return Answer(200, {"recordIdsAdded": added, "recordIdsRemoved": removed,
                            "recordIdsMissing": [r for r in body.get("recordIdsToAdd", []) if r not in known]})

    fake = FakeVendor([
        Route("GET", r"/crm/v3/lists/object-type-id/0-1/name/([^/]+)", find),
        Route("POST", r"/crm/v3/lists", create, schema=CREATE_LIST),
        Route("POST", r"/crm/v3/objects/contacts/batch/upsert", upsert, schema=UPSERT),
        Route("POST", r"/crm/v3/objects/contacts/batch/read", read, schema=READ),
        Route("PUT", r"/crm/v3/lists/(\d+)/memberships/add-and-remove", memberships, schema=MEMBERSHIPS),
        Route("GET", r"/crm/v3/objects/contacts", lambda seen, _m: denied(seen) or Answer(200, {"results": []})),
    ])
    state = HubSpotListsFake(fake)
    fake.start()
    return state
