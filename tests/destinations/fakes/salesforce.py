"""A fake Salesforce: the login host (OAuth refresh-token grant) and an org's REST API, as two
servers, so a test proves requests go to the ``instance_url`` the token answer named.

Bodies are validated against schemas written from the REST API reference (reference
destinations.md 20); errors use Salesforce's ``[{message, errorCode}]`` shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CLIENT_ID = "3MVG9-consumer-key"
CLIENT_SECRET = "sf-consumer-secret-77aa"
REFRESH_TOKEN = "5Aep861-refresh-9f3c"
VERSION = "v62.0"
SOQL = re.compile(r"^SELECT Id FROM (Lead|Contact) WHERE Email = '((?:[^'\\]|\\.)*)'"
                  r" ORDER BY LastModifiedDate DESC LIMIT 1$")
#: Fields the fake org has on Lead/Contact (custom ones end in __c); anything else is INVALID_FIELD.
FIELDS = {"Email", "LastName", "FirstName", "Company", "Phone", "Title", "vip_buyers__c", "ltv_90d__c"}
VALUE = {"type": ["string", "number", "boolean", "null"]}
RECORD = {"type": "object", "additionalProperties": VALUE, "minProperties": 1}
LEAD_CREATE = {**RECORD, "required": ["Email", "LastName", "Company"]}
CONTACT_CREATE = {**RECORD, "required": ["Email", "LastName"]}
TOKEN_FORM = {"type": "object", "required": ["grant_type", "refresh_token", "client_id", "client_secret"],
              "properties": {"grant_type": {"const": "refresh_token"}}}


def sf_error(status: int, code: str, message: str = "") -> Answer:
    return Answer(status, [{"message": message or code, "errorCode": code}])


class SalesforceFake:
    def __init__(self) -> None:
        self.issued = 0
        self.live: str | None = None
        self.records: dict[str, dict[str, Any]] = {"00Q000000000001": {"Email": "known@x.io"}}
        self.login = FakeVendor([Route("POST", "/services/oauth2/token", self._token, schema=TOKEN_FORM, form=True)])
        base = f"/services/data/{VERSION}"
        self.org = FakeVendor([
            Route("GET", f"{base}/query", self._query),
            Route("PATCH", rf"{base}/sobjects/(Lead|Contact)/(\w+)", self._update, schema=RECORD),
            Route("POST", f"{base}/sobjects/Lead", self._create, schema=LEAD_CREATE),
            Route("POST", f"{base}/sobjects/Contact", self._create, schema=CONTACT_CREATE),
            Route("GET", f"{base}/limits", lambda seen, _m: Answer(200, {"DailyApiRequests": {"Max": 15000}})
                  if self._authorised(seen) else sf_error(401, "INVALID_SESSION_ID")),
        ])

    @property
    def violations(self) -> list[str]:
        return self.login.violations + self.org.violations

    def _token(self, seen: Seen, _m: re.Match[str]) -> Answer:
        form = {k: v[0] for k, v in seen.form().items()}
        if (form.get("client_id"), form.get("client_secret"), form.get("refresh_token")) != (
                CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN):
            return Answer(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
        self.issued += 1
        self.live = f"00D!sf-token-{self.issued}"
        return Answer(200, {"access_token": self.live, "instance_url": self.org.url, "token_type": "Bearer",
                            "id": "https://login.salesforce.com/id/00D/005", "issued_at": "1764590000000",
                            "signature": "sig"})

    def _authorised(self, seen: Seen) -> bool:
        return self.live is not None and seen.header("Authorization") == f"Bearer {self.live}"

    def _query(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        match = SOQL.match(seen.query.get("q", [""])[0])
        if match is None:
            self.org.violations.append(f"unexpected SOQL {seen.query.get('q')}")
            return sf_error(400, "MALFORMED_QUERY")
        email = re.sub(r"\\(.)", r"\1", match.group(2))
        hits = [{"attributes": {"type": match.group(1)}, "Id": rid} for rid, r in self.records.items()
                if r.get("Email") == email]
        return Answer(200, {"totalSize": len(hits), "done": True, "records": hits})

    def _bad_field(self, body: dict[str, Any]) -> Answer | None:
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return sf_error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject")
        return None

    def _update(self, seen: Seen, match: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        body = seen.json()
        bad = self._bad_field(body)
        if bad is not None:
            return bad
        if match.group(2) not in self.records:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        self.records[match.group(2)].update(body)
        return Answer(204)

    def _create(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        body = seen.json()
        bad = self._bad_field(body)
        if bad is not None:
            return bad
        new_id = f"00Q{len(self.records) + 1:012d}"
        self.records[new_id] = dict(body)
        return Answer(201, {"id": new_id, "success": True, "errors": []})


@contextmanager
def salesforce_fake() -> Iterator[SalesforceFake]:
    fake = SalesforceFake()
    fake.login.start()
    fake.org.start()
    try:
        yield fake
    finally:
        fake.login.stop()
        fake.org.stop()
