"""A fake Salesforce Marketing Cloud tenant for list data extensions: token, create, find, rows.

Bodies are validated against JSON Schemas written from the REST reference (reference section 21):
``POST /v2/token`` (client credentials), ``POST /data/v1/customobjects {name, key, fields}``,
``GET /data/v1/customobjectdata/key/<key>/rowset``, ``POST /hub/v1/dataevents/key:<key>/rowset
[{keys, values}]`` (1..50 rows; like SFMC, rows are stored in order until the first bad one, and
the 400 does not say which it was) and ``DELETE /hub/v1/dataevents/key:<key>/rows/ContactKey:<v>``.
A data extension that does not exist answers 404 with errorcode 10001.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.destinations.fakes.salesforce_marketing_cloud import CLIENT_ID, CLIENT_SECRET, TOKEN
from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

FIELD = {"type": "object", "required": ["name", "type"], "properties": {
    "name": {"type": "string", "minLength": 1}, "type": {"enum": ["Text", "EmailAddress", "Number", "Date", "Boolean"]},
    "length": {"type": "integer"}, "isPrimaryKey": {"type": "boolean"}, "isNullable": {"type": "boolean"},
    "ordinal": {"type": "integer"}}}
CREATE = {"type": "object", "required": ["name", "key", "fields"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 128},
    "key": {"type": "string", "minLength": 1, "maxLength": 36}, "description": {"type": "string"},
    "categoryId": {"type": "integer"}, "fields": {"type": "array", "minItems": 1, "items": FIELD}}}
ROWSET = {"type": "array", "minItems": 1, "maxItems": 50, "items": {
    "type": "object", "required": ["keys", "values"], "additionalProperties": False,
    "properties": {"keys": {"type": "object", "required": ["ContactKey"], "additionalProperties": False,
                            "properties": {"ContactKey": {"type": "string", "minLength": 1, "maxLength": 254}}},
                   "values": {"type": "object", "additionalProperties": False,
                              "properties": {"EmailAddress": {"type": "string"}}}}}}


def missing() -> Answer:
    return Answer(404, {"message": "Data extension not found", "errorcode": 10001, "documentation": ""})


@dataclass
class SfmcListsFake:
    fake: FakeVendor
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {name, rows}
    #: Contact keys SFMC refuses (a value its EmailAddress field rejects).
    invalid: set[str] = field(default_factory=set)
    issued: int = 0
    live: str | None = None

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()

    def rows(self, key: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.extensions[key]["rows"]
        return found


def sfmc_lists_fake() -> SfmcListsFake:
    state: SfmcListsFake

    def refused(seen: Seen) -> Answer | None:
        if state.live is None or seen.header("Authorization") != f"Bearer {state.live}":
            return Answer(401, {"documentation": "", "errorcode": 0, "message": "Not Authorized"})
        return None

    def token(seen: Seen, _m: re.Match[str]) -> Answer:
        body = seen.json()
        if (body["client_id"], body["client_secret"]) != (CLIENT_ID, CLIENT_SECRET):
            return Answer(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        state.issued += 1
        state.live = f"sfmc-token-{state.issued}"
        return Answer(200, {"access_token": state.live, "token_type": "Bearer", "expires_in": 1079,
                            "rest_instance_url": f"{state.fake.url}/", "soap_instance_url": f"{state.fake.url}/"})

    def find(seen: Seen, m: re.Match[str]) -> Answer:
        if (no := refused(seen)) is not None:
            return no
        ext = state.extensions.get(unquote(m.group(1)))
        if ext is None:
            return missing()
        return Answer(200, {"links": {}, "requestToken": "t", "customObjectKey": m.group(1), "pageSize": 1,
                            "page": 1, "count": len(ext["rows"]), "items": []})

    def create(seen: Seen, _m: re.Match[str]) -> Answer:
        if (no := refused(seen)) is not None:
            return no
        body = seen.json()
        if body["key"] in state.extensions:
            return Answer(400, {"message": "A data extension with this key exists", "errorcode": 10000})
        state.extensions[body["key"]] = {"name": body["name"], "fields": body["fields"], "rows": {}}
        return Answer(201, {"id": f"de-{len(state.extensions)}", "key": body["key"], "name": body["name"]})

    def rowset(seen: Seen, m: re.Match[str]) -> Answer:
        if (no := refused(seen)) is not None:
            return no
        ext = state.extensions.get(unquote(m.group(1)))
        if ext is None:
            return missing()
        for row in seen.json():
            contact = row["keys"]["ContactKey"]
            if contact in state.invalid:
                return Answer(400, {"message": "Unable to save rows for data extension ID 7c1b", "errorcode": 10006,
                                    "additionalErrors": [{"message": f"{contact} is not a valid EmailAddress",
                                                          "errorcode": 10000}]})
            ext["rows"][contact] = row["values"]
        return Answer(200, seen.json())

    def delete(seen: Seen, m: re.Match[str]) -> Answer:
        if (no := refused(seen)) is not None:
            return no
        ext = state.extensions.get(unquote(m.group(1)))
        if ext is None:
            return missing()
        contact = unquote(m.group(2))
        if ext["rows"].pop(contact, None) is None:
            return Answer(404, {"message": "Row not found", "errorcode": 10002})
        return Answer(200, {"keys": {"ContactKey": contact}})

    fake = FakeVendor([
        Route("POST", "/v2/token", token, schema=TOKEN),
        Route("GET", r"/data/v1/customobjectdata/key/([^/]+)/rowset", find),
        Route("POST", r"/data/v1/customobjects", create, schema=CREATE),
        Route("POST", r"/hub/v1/dataevents/key:([^/]+)/rowset", rowset, schema=ROWSET),
        Route("DELETE", r"/hub/v1/dataevents/key:([^/]+)/rows/ContactKey:(.+)", delete),
    ])
    state = SfmcListsFake(fake)
    fake.start()
    return state
