"""A fake Oracle Responsys account: password login, list / PET merges (sync and async), polling.

Written from reference destinations.md 19 and Oracle's REST API pages: form login answering
``{authToken, issuedAt, endPoint}``, the raw token in ``Authorization``, merges of up to 200 rows
answered with one RIID or ``MERGEFAILED: ...`` per row, async merges answering ``{requestId}``
and a polling endpoint answering ``PROCESSING_REQUEST`` until done. The login names this
server's own URL as ``endPoint`` (``api_url``), so tests see later calls follow it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

USER = "api_user"
PASSWORD = "rsys-pass-9q8w"
LIST = "CONTACTS_LIST"
PET = "ENGAGE_PET"
LOGIN_FORM = {"type": "object", "required": ["user_name", "password", "auth_type"], "additionalProperties": False,
              "properties": {"user_name": {"type": "string", "minLength": 1},
                             "password": {"type": "string", "minLength": 1}, "auth_type": {"const": "password"}}}
RECORD_DATA = {"type": "object", "required": ["fieldNames", "records"], "additionalProperties": False,
               "properties": {"fieldNames": {"type": "array", "minItems": 1, "uniqueItems": True,
                                             "items": {"type": "string", "pattern": "^[A-Z0-9_]+$"}},
                              "records": {"type": "array", "minItems": 1, "maxItems": 200,
                                          "items": {"type": "array", "items": {"type": "string"}}},
                              "mapTemplateName": {"type": ["string", "null"]}}}
LIST_MERGE = {"type": "object", "required": ["recordData", "mergeRule"], "additionalProperties": False,
              "properties": {"recordData": RECORD_DATA, "mergeRule": {
                  "type": "object", "required": ["insertOnNoMatch", "updateOnMatch", "matchColumnName1"],
                  "properties": {"insertOnNoMatch": {"type": "boolean"},
                                 "updateOnMatch": {"enum": ["REPLACE_ALL", "NO_UPDATE"]},
                                 "matchColumnName1": {"enum": ["EMAIL_ADDRESS_", "CUSTOMER_ID_", "RIID_"]},
                                 "matchColumnName2": {"enum": ["EMAIL_ADDRESS_", "CUSTOMER_ID_", "RIID_"]},
                                 "matchOperator": {"enum": ["NONE", "AND"]},
                                 "defaultPermissionStatus": {"enum": ["OPTIN", "OPTOUT"]}}}}}
PET_MERGE = {"type": "object", "required": ["recordData", "insertOnNoMatch", "updateOnMatch", "matchColumnName1"],
             "additionalProperties": False,
             "properties": {"recordData": RECORD_DATA, "insertOnNoMatch": {"type": "boolean"},
                            "updateOnMatch": {"enum": ["REPLACE_ALL", "NO_UPDATE"]},
                            "matchColumnName1": {"enum": ["EMAIL_ADDRESS", "CUSTOMER_ID", "RIID"]},
                            "matchColumnName2": {"type": "string"}}}


def rsys_error(status: int, code: str, title: str) -> Answer:
    return Answer(status, {"type": "", "title": title, "errorCode": code, "detail": title, "errorDetails": []})


class ResponsysFake:
    def __init__(self, *, processing_polls: int = 1) -> None:
        self.issued = 0
        self.live: str | None = None
        self.columns = {"EMAIL_ADDRESS_", "CUSTOMER_ID_", "VIP_BUYERS", "LTV_90D"}
        self.members: dict[str, dict[str, str]] = {}
        self.pet: dict[str, dict[str, str]] = {}
        self.requests: dict[str, tuple[int, dict[str, Any]]] = {}
        self.processing_polls = processing_polls
        lists = rf"/rest/(api|asyncApi)/v1\.3/lists/{LIST}"
        self.fake = FakeVendor([
            Route("POST", "/rest/api/v1.3/auth/token", self._login, schema=LOGIN_FORM, form=True),
            Route("POST", rf"{lists}/members", self._merge_list, schema=LIST_MERGE),
            Route("POST", rf"{lists}/listExtensions/{PET}/members", self._merge_pet, schema=PET_MERGE),
            Route("GET", r"/rest/asyncApi/v1\.3/requests/([\w=-]+)", self._poll),
            Route("GET", "/rest/api/ratelimit", lambda seen, _m: self._refused(seen) or Answer(200, [])),
        ])

    @property
    def url(self) -> str:
        return self.fake.url

    def _login(self, seen: Seen, _m: re.Match[str]) -> Answer:
        form = {k: v[0] for k, v in seen.form().items()}
        if (form["user_name"], form["password"]) != (USER, PASSWORD):
            return rsys_error(401, "INVALID_USER_NAME_PASSWORD", "Invalid username or password")
        self.issued += 1
        self.live = f"rsys-token-{self.issued}"
        return Answer(200, {"authToken": self.live, "issuedAt": 1796040000000, "endPoint": self.fake.url})

    def _refused(self, seen: Seen) -> Answer | None:
        if self.live is None or seen.header("Authorization") != self.live:
            return rsys_error(401, "TOKEN_EXPIRED", "Authentication token expired")
        return None

    def _rows(self, body: dict[str, Any]) -> list[dict[str, str]] | Answer:
        names = body["recordData"]["fieldNames"]
        unknown = sorted(set(names) - self.columns)
        if unknown:
            return rsys_error(400, "INVALID_FIELD_NAME", f"Invalid field name: {unknown[0]}")
        return [dict(zip(names, record, strict=True)) for record in body["recordData"]["records"]]

    def _merge(self, rows: list[dict[str, str]], store: dict[str, dict[str, str]]) -> dict[str, Any]:
        records = []
        for n, row in enumerate(rows, 1):
            email = row.get("EMAIL_ADDRESS_", "")
            if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", email):
                records.append([f"MERGEFAILED: Record {n} = INVALID_EMAIL_ADDRESS"])
                continue
            key = email or row["CUSTOMER_ID_"]
            store.setdefault(key, {}).update(row)
            records.append([str(1000 + list(store).index(key))])
        return {"recordData": {"fieldNames": ["RIID_"], "records": records, "mapTemplateName": None}}

    def _answer(self, kind: str, result: dict[str, Any]) -> Answer:
        if kind == "api":
            return Answer(200, result)
        request_id = f"UGpCVnBC{len(self.requests) + 1}"
        self.requests[request_id] = (0, result)
        return Answer(200, {"requestId": request_id})

    def _merge_list(self, seen: Seen, match: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        rows = self._rows(seen.json())
        return rows if isinstance(rows, Answer) else self._answer(match.group(1), self._merge(rows, self.members))

    def _merge_pet(self, seen: Seen, match: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        rows = self._rows(seen.json())
        return rows if isinstance(rows, Answer) else self._answer(match.group(1), self._merge(rows, self.pet))

    def _poll(self, seen: Seen, match: re.Match[str]) -> Answer:
        refused = self._refused(seen)
        if refused:
            return refused
        request_id = match.group(1)
        if request_id not in self.requests:
            return Answer(200, {"response": {"type": "", "title": "Response purged", "errorCode": "RESPONSE_PURGED",
                                             "detail": "Response Message Purged", "errorDetails": "[]"},
                                "requestId": request_id, "status": "UNKNOWN"})
        polls, result = self.requests[request_id]
        self.requests[request_id] = (polls + 1, result)
        if polls < self.processing_polls:
            return Answer(200, {"response": {"type": "", "title": "Processing request",
                                             "errorCode": "PROCESSING_REQUEST", "detail": "Request is processing",
                                             "errorDetails": []}, "requestId": request_id, "status": "UNKNOWN"})
        return Answer(200, {"response": result, "requestId": request_id, "apiName": "AsyncMergeListMembers",
                            "status": "SUCCESS"})


@contextmanager
def responsys_fake(**kw: Any) -> Iterator[ResponsysFake]:
    fake = ResponsysFake(**kw)
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
