"""A fake Oracle Eloqua instance: ``/id`` discovery, contact fields, contact search / create / update.

Shapes follow Oracle's Application API 1.0 reference: Basic ``company\\user:password``, the
``/id`` answer naming the instance's base URL (this server), contacts with ``fieldValues``
addressed by field id, search by ``emailAddress='...'``, 400 ``ObjectValidationError`` lists.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

COMPANY = "AcmeCorp"
USER = "api.user"
PASSWORD = "elq-pass-4r7t"
FIELDS = [{"type": "ContactField", "id": "100200", "name": "vip_buyers", "internalName": "C_vip_buyers1"},
          {"type": "ContactField", "id": "100201", "name": "LTV 90d", "internalName": "C_ltv_90d"},
          {"type": "ContactField", "id": "100002", "name": "First Name", "internalName": "C_FirstName"}]
CONTACT = {"type": "object", "required": ["type", "emailAddress"], "additionalProperties": False, "properties": {
    "type": {"const": "Contact"}, "id": {"type": "string"}, "emailAddress": {"type": "string"},
    "firstName": {"type": "string"}, "lastName": {"type": "string"}, "title": {"type": "string"},
    "city": {"type": "string"}, "country": {"type": "string"}, "businessPhone": {"type": "string"},
    "accountName": {"type": "string"},
    "fieldValues": {"type": "array", "items": {"type": "object", "required": ["id", "value"],
                                               "additionalProperties": False,
                                               "properties": {"type": {"const": "FieldValue"},
                                                              "id": {"type": "string", "pattern": "^[0-9]+$"},
                                                              "value": {"type": "string"}}}}}}


class EloquaFake:
    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {"7": {"id": "7", "emailAddress": "known@x.io", "fields": {}}}
        self.discoveries = 0
        self.fake = FakeVendor([
            Route("GET", "/id", self._id),
            Route("GET", "/api/REST/1.0/assets/contact/fields", lambda seen, _m: self._refused(seen) or Answer(
                200, {"elements": FIELDS, "page": 1, "pageSize": 1000, "total": len(FIELDS)})),
            Route("GET", "/api/REST/1.0/data/contacts", self._search),
            Route("PUT", r"/api/REST/1.0/data/contact/(\d+)", self._update, schema=CONTACT),
            Route("POST", "/api/REST/1.0/data/contact", self._create, schema=CONTACT),
            Route("GET", "/api/REST/1.0/system/user/current", lambda seen, _m: self._refused(seen) or Answer(
                200, {"type": "User", "id": "9", "loginName": USER})),
        ])

    @staticmethod
    def _refused(seen: Seen) -> Answer | None:
        expected = base64.b64encode(f"{COMPANY}\\{USER}:{PASSWORD}".encode()).decode()
        if seen.header("Authorization") != f"Basic {expected}":
            return Answer(401, "Not authenticated.")
        return None

    def _id(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return Answer(200, "Not authenticated.")  # /id answers 200 with this text for bad credentials
        self.discoveries += 1
        return Answer(200, {"site": {"id": 42, "name": COMPANY}, "user": {"id": 9, "username": USER},
                            "urls": {"base": self.fake.url, "apis": {"rest": {
                                "standard": f"{self.fake.url}/API/REST/{{version}}/",
                                "bulk": f"{self.fake.url}/API/Bulk/{{version}}/"}}}})

    def _search(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        match = re.fullmatch(r"emailAddress='([^']+)'", seen.query.get("search", [""])[0])
        if match is None:
            self.fake.violations.append(f"unexpected search {seen.query.get('search')}")
            return Answer(400, [{"type": "QueryValidationError"}])
        hits = [{"type": "Contact", "id": c["id"], "emailAddress": c["emailAddress"]}
                for c in self.contacts.values() if c["emailAddress"] == match.group(1)]
        return Answer(200, {"elements": hits, "page": 1, "pageSize": 2, "total": len(hits)})

    def _invalid(self, body: dict[str, Any]) -> Answer | None:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", body["emailAddress"]):
            return Answer(400, [{"type": "ObjectValidationError", "container": {"type": "ObjectKey", "objectType":
                                                                                "Contact"},
                                 "property": "emailAddress", "requirement": {"type": "EmailAddressRequirement"},
                                 "value": body["emailAddress"]}])
        return None

    def _store(self, record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        record["fields"].update({v["id"]: v["value"] for v in body.get("fieldValues", [])})
        record.update({k: v for k, v in body.items() if k not in ("fieldValues", "type", "id")})
        return {"type": "Contact", "id": record["id"], "emailAddress": record["emailAddress"],
                "fieldValues": [{"type": "FieldValue", "id": k, "value": v} for k, v in record["fields"].items()]}

    def _update(self, seen: Seen, match: re.Match[str]) -> Answer:
        refused = self._refused(seen) or self._invalid(seen.json())
        if refused:
            return refused
        record = self.contacts.get(match.group(1))
        if record is None:
            return Answer(404, "There was an error processing the request.")
        return Answer(200, self._store(record, seen.json()))

    def _create(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen) or self._invalid(seen.json())
        if refused:
            return refused
        body = seen.json()
        if any(c["emailAddress"] == body["emailAddress"] for c in self.contacts.values()):
            return Answer(409, [{"type": "ObjectValidationError", "property": "emailAddress",
                                 "requirement": {"type": "UniquenessRequirement"}, "value": body["emailAddress"]}])
        record = {"id": str(len(self.contacts) + 7), "fields": {}}
        self.contacts[record["id"]] = record
        return Answer(201, self._store(record, body))


@contextmanager
def eloqua_fake() -> Iterator[EloquaFake]:
    fake = EloquaFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
