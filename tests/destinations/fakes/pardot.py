"""A fake Pardot (Account Engagement) v5 API and Salesforce login host on one server.

Written from reference destinations.md 18: Salesforce OAuth refresh-token grant, Bearer plus
``Pardot-Business-Unit-Id`` on every API call, ``upsertLatestByEmail``; errors as
``{code, message}`` JSON (the numeric codes here are illustrative, except 66 = daily limit).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CLIENT_ID = "3MVG9-pardot-app"
CLIENT_SECRET = "pardot-consumer-secret-31"
REFRESH_TOKEN = "5Aep-pardot-refresh-88"
BUSINESS_UNIT = "0Uv5g000000XyZaCAK"
SCALAR = {"type": ["string", "number", "boolean", "null"]}
UPSERT = {"type": "object", "required": ["matchEmail", "prospect"], "additionalProperties": False,
          "properties": {"matchEmail": {"type": "string", "minLength": 3},
                         "secondaryDeletedSearch": {"type": "boolean"},
                         "prospect": {"type": "object", "required": ["email"],
                                      "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                                      "additionalProperties": SCALAR}}}
TOKEN_FORM = {"type": "object", "required": ["grant_type", "refresh_token", "client_id", "client_secret"],
              "properties": {"grant_type": {"const": "refresh_token"}}}
FIELDS = {"email", "firstName", "lastName", "company", "vip_buyers__c", "ltv_90d__c"}


class PardotFake:
    def __init__(self) -> None:
        self.issued = 0
        self.live: str | None = None
        self.prospects: dict[str, dict[str, Any]] = {"known@x.io": {"id": 1, "email": "known@x.io"}}
        self.fake = FakeVendor([
            Route("POST", "/services/oauth2/token", self._token, schema=TOKEN_FORM, form=True),
            Route("POST", "/api/v5/objects/prospects/do/upsertLatestByEmail", self._upsert, schema=UPSERT),
            Route("GET", "/api/v5/objects/prospects", lambda seen, _m: self._refused(seen) or Answer(
                200, {"values": [], "nextPageUrl": None})),
        ])

    def _token(self, seen: Seen, _m: re.Match[str]) -> Answer:
        form = {k: v[0] for k, v in seen.form().items()}
        if (form["client_id"], form["client_secret"], form["refresh_token"]) != (CLIENT_ID, CLIENT_SECRET,
                                                                                 REFRESH_TOKEN):
            return Answer(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
        self.issued += 1
        self.live = f"00D!pardot-{self.issued}"
        return Answer(200, {"access_token": self.live, "instance_url": "https://acme.my.salesforce.com",
                            "token_type": "Bearer", "issued_at": "1764590000000"})

    def _refused(self, seen: Seen) -> Answer | None:
        if seen.header("Pardot-Business-Unit-Id") != BUSINESS_UNIT:
            return Answer(400, {"code": 181, "message": "Pardot-Business-Unit-Id header is invalid"})
        if self.live is None or seen.header("Authorization") != f"Bearer {self.live}":
            return Answer(401, {"code": 184, "message": "access_token is invalid, unknown, or malformed"})
        return None

    def _upsert(self, seen: Seen, _m: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        body = seen.json()
        prospect = body["prospect"]
        if prospect["email"] != body["matchEmail"]:
            self.fake.violations.append("prospect.email differs from matchEmail")
        unknown = sorted(set(prospect) - FIELDS)
        if unknown:
            return Answer(400, {"code": 62, "message": f"Invalid property: {unknown[0]}"})
        record = self.prospects.setdefault(prospect["email"], {"id": len(self.prospects) + 1})
        record.update(prospect)
        return Answer(200, record)


@contextmanager
def pardot_fake() -> Iterator[PardotFake]:
    fake = PardotFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
