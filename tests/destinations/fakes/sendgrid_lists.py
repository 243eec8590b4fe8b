"""A fake of the SendGrid Marketing Campaigns lists and contacts API.

Bodies are validated against JSON Schemas written from SendGrid's OpenAPI document
(``tsg_mc_contacts_v3`` / ``tsg_mc_lists_v3``; reference section 16): ``PUT /v3/marketing/contacts``
(``contacts`` 1..30,000 with an identifier each, ``list_ids`` of UUIDs), ``POST
/v3/marketing/lists {name}``, ``POST /v3/marketing/contacts/search/emails {emails: 1..100}``,
``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=`` (the query checked by hand). Like
SendGrid, one malformed email rejects the whole upsert with ``errors[].field =
contacts[i].email`` (and echoes the email in the message).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

API_KEY = "SG.fake-api-key.secret-part-123"
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CONTACTS_SCHEMA = {"type": "object", "required": ["contacts"], "additionalProperties": False, "properties": {
    "list_ids": {"type": "array", "items": {"type": "string", "pattern": UUID}},
    "contacts": {"type": "array", "minItems": 1, "maxItems": 30000, "items": {
        "type": "object", "anyOf": [{"required": ["email"]}, {"required": ["external_id"]},
                                    {"required": ["phone_number_id"]}, {"required": ["anonymous_id"]}],
        "properties": {"email": {"type": "string", "maxLength": 254}}}}}}
LIST_SCHEMA = {"type": "object", "required": ["name"], "additionalProperties": False,
               "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}}}
SEARCH_SCHEMA = {"type": "object", "required": ["emails"], "additionalProperties": False,
                 "properties": {"emails": {"type": "array", "minItems": 1, "maxItems": 100,
                                           "items": {"type": "string"}}}}
_VALID = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


@dataclass
class SendGridFake:
    fake: FakeVendor
    lists: dict[str, set[str]] = field(default_factory=dict)  # list id -> contact ids
    contacts: dict[str, str] = field(default_factory=dict)  # email -> contact id
    #: Emails SendGrid calls malformed although they look fine to us.
    invalid: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()

    def emails_in(self, list_id: str) -> set[str]:
        by_id = {v: k for k, v in self.contacts.items()}
        return {by_id[c] for c in self.lists.get(list_id, set())}


def sendgrid_fake() -> SendGridFake:
    state: SendGridFake

    def denied(seen: Seen) -> Answer | None:
        if seen.header("Authorization") != f"Bearer {API_KEY}":
            return Answer(401, {"errors": [{"field": None, "message": "authorization required"}]})
        return None

    def create_list(seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        list_id = str(uuid.uuid4())
        state.lists[list_id] = set()
        return Answer(201, {"id": list_id, "name": seen.json()["name"], "contact_count": 0})

    def upsert(seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        body = seen.json()
        contacts = body["contacts"]
        errors = [{"field": f"contacts[{i}].email", "message": f"email '{c['email']}' is not valid"}
                  for i, c in enumerate(contacts) if not _VALID.match(c["email"]) or c["email"] in state.invalid]
        if errors:
            return Answer(400, {"errors": errors})
        for list_id in body.get("list_ids", []):
            if list_id not in state.lists:
                return Answer(404, {"errors": [{"field": "list_ids", "message": "list not found"}]})
        for c in contacts:
            cid = state.contacts.setdefault(c["email"].lower(), str(uuid.uuid4()))
            for list_id in body.get("list_ids", []):
                state.lists[list_id].add(cid)
        return Answer(202, {"job_id": str(uuid.uuid4())})

    def search(seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        found = {e: {"contact": {"id": state.contacts[e.lower()], "email": e.lower()}}
                 for e in seen.json()["emails"] if e.lower() in state.contacts}
        if not found:
            return Answer(404, {"errors": [{"message": "No contacts found"}]})
        return Answer(200, {"result": found})

    def remove(seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        ids = seen.query.get("contact_ids", [""])[0].split(",")
        if not ids or len(ids) > 100 or not all(re.match(UUID, i) for i in ids):
            state.fake.violations.append(f"DELETE {seen.path}: contact_ids must be 1..100 UUIDs")
            return Answer(400, {"errors": [{"field": "contact_ids", "message": "invalid"}]})
        held = state.lists.get(m.group(1))
        if held is None:
            return Answer(404, {"errors": [{"field": "id", "message": "list not found"}]})
        held.difference_update(ids)
        return Answer(202, {"job_id": str(uuid.uuid4())})

    fake = FakeVendor([
        Route("POST", r"/v3/marketing/lists", create_list, schema=LIST_SCHEMA),
        Route("PUT", r"/v3/marketing/contacts", upsert, schema=CONTACTS_SCHEMA),
        Route("POST", r"/v3/marketing/contacts/search/emails", search, schema=SEARCH_SCHEMA),
        Route("DELETE", r"/v3/marketing/lists/([0-9a-f-]{36})/contacts", remove),
    ])
    state = SendGridFake(fake)
    fake.start()
    return state
