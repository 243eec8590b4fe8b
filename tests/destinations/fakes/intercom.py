"""A fake Intercom API (contacts search / create / update, data events, /me).

Schemas are written from the Intercom API reference 2.x (reference destinations.md 6). Like
Intercom, search is eventually consistent: a contact in ``unindexed`` is not found by search for
its first lookup, and creating it again answers 409 ``conflict``. Custom attributes must be
defined data attributes (else 400 ``parameter_invalid``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

TOKEN = "dG9rOmludGVyY29tLXRlc3QtdG9rZW4="
SCALAR = {"type": ["string", "number", "boolean", "null"]}
SEARCH = {"type": "object", "required": ["query"], "properties": {"query": {
    "type": "object", "required": ["field", "operator", "value"], "additionalProperties": False,
    "properties": {"field": {"enum": ["external_id", "email", "id"]}, "operator": {"const": "="},
                   "value": {"type": "string", "minLength": 1}}}}}
CONTACT = {"type": "object", "additionalProperties": False, "properties": {
    "role": {"enum": ["user", "lead"]}, "external_id": {"type": "string"}, "email": {"type": "string"},
    "phone": {"type": "string"}, "name": {"type": "string"}, "avatar": {"type": "string"},
    "signed_up_at": {"type": "integer"}, "last_seen_at": {"type": "integer"}, "owner_id": {"type": "integer"},
    "unsubscribed_from_emails": {"type": "boolean"},
    "custom_attributes": {"type": "object", "additionalProperties": SCALAR}}}
CREATE = {**CONTACT, "required": ["role"], "anyOf": [{"required": ["external_id"]}, {"required": ["email"]}]}
EVENT = {"type": "object", "required": ["event_name", "created_at"], "additionalProperties": False,
         "anyOf": [{"required": ["user_id"]}, {"required": ["email"]}, {"required": ["id"]}],
         "properties": {"event_name": {"type": "string", "minLength": 1}, "created_at": {"type": "integer"},
                        "user_id": {"type": "string"}, "email": {"type": "string"}, "id": {"type": "string"},
                        "metadata": {"type": "object", "maxProperties": 10, "additionalProperties": SCALAR}}}


def error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"type": "error.list", "request_id": "req-1", "errors": [{"code": code,
                                                                                     "message": message}]})


class IntercomFake:
    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {
            "c1": {"id": "c1", "role": "user", "external_id": "u1", "email": "known@x.io", "custom_attributes": {}}}
        self.attributes = {"vip_buyers", "ltv_90d"}
        self.unindexed: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self.fake = FakeVendor([
            Route("POST", "/contacts/search", self._search, schema=SEARCH),
            Route("PUT", r"/contacts/(\w+)", self._update, schema=CONTACT),
            Route("POST", "/contacts", self._create, schema=CREATE),
            Route("POST", "/events", self._event, schema=EVENT),
            Route("GET", "/me", lambda seen, _m: self._refused(seen) or Answer(200, {"type": "admin", "id": "1"})),
        ])

    def _refused(self, seen: Seen) -> Answer | None:
        if not seen.header("Intercom-Version"):
            self.fake.violations.append(f"{seen.method} {seen.path}: no Intercom-Version header")
        if seen.header("Authorization") != f"Bearer {TOKEN}":
            return error(401, "unauthorized", "Access Token Invalid")
        return None

    def _bad_attribute(self, body: dict[str, Any]) -> Answer | None:
        unknown = sorted(set(body.get("custom_attributes") or {}) - self.attributes)
        if unknown:
            return error(400, "parameter_invalid", f"Custom attribute '{unknown[0]}' does not exist")
        return None

    def _search(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        query = seen.json()["query"]
        hits = [c for c in self.contacts.values() if c.get(query["field"]) == query["value"]
                and c["id"] not in self.unindexed]
        self.unindexed.clear()  # the index catches up
        return Answer(200, {"type": "list", "data": hits, "total_count": len(hits), "pages": {}})

    def _update(self, seen: Seen, match: re.Match[str]) -> Answer:
        refused = self._refused(seen) or self._bad_attribute(seen.json())
        if refused:
            return refused
        contact = self.contacts.get(match.group(1))
        if contact is None:
            return error(404, "not_found", "User Not Found")
        body = seen.json()
        contact["custom_attributes"].update(body.pop("custom_attributes", {}))
        contact.update(body)
        return Answer(200, {"type": "contact", **contact})

    def _create(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen) or self._bad_attribute(seen.json())
        if refused:
            return refused
        body = seen.json()
        for contact in self.contacts.values():
            if body.get("external_id") and contact.get("external_id") == body["external_id"]:
                return error(409, "conflict",
                             f"A contact matching those details already exists with id={contact['id']}")
        contact = {"id": f"c{len(self.contacts) + 1}", "custom_attributes": {}, **body}
        self.contacts[contact["id"]] = contact
        return Answer(200, {"type": "contact", **contact})

    def _event(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        self.events.append(seen.json())
        return Answer(202)


@contextmanager
def intercom_fake() -> Iterator[IntercomFake]:
    fake = IntercomFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
