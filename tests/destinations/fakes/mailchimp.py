"""A fake Mailchimp Marketing API (reference destinations.md 7): Basic any:key, members keyed by
the MD5 of the lowercased email (a wrong hash is a 404 like Mailchimp's), tags and events
bodies checked, events on an unknown member answered 404 until the member is upserted."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

MEMBER: dict[str, Any] = {
    "type": "object", "required": ["email_address"], "additionalProperties": False,
    "properties": {"email_address": {"type": "string", "pattern": "@"},
                   "status_if_new": {"enum": ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]},
                   "status": {"enum": ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]},
                   "merge_fields": {"type": "object", "propertyNames": {"pattern": "^[A-Z0-9_]{1,10}$"}}},
}
TAGS = {"type": "object", "required": ["tags"], "additionalProperties": False,
        "properties": {"tags": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "status"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1},
                           "status": {"enum": ["active", "inactive"]}}}}}}
EVENT = {"type": "object", "required": ["name"], "additionalProperties": False,
         "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{2,30}$"},
                        "properties": {"type": "object", "additionalProperties": {"type": "string"}},
                        "occurred_at": {"type": "string"}, "is_syncing": {"type": "boolean"}}}


def mailchimp_fake(api_key: str, list_id: str) -> FakeVendor:
    members: dict[str, dict[str, Any]] = {}

    def authorised(seen: Seen) -> bool:
        raw = (seen.header("Authorization") or "").removeprefix("Basic ")
        try:
            return base64.b64decode(raw).decode().split(":", 1)[1] == api_key
        except (ValueError, IndexError):
            return False

    def problem(status: int, title: str) -> Answer:
        return Answer(status, {"type": "about:blank", "title": title, "status": status, "detail": title,
                               "instance": "x"})

    def put_member(seen: Seen, m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return problem(401, "API Key Invalid")
        body = seen.json()
        if m["list"] != list_id:
            return problem(404, "Resource Not Found")
        if hashlib.md5(body["email_address"].lower().encode()).hexdigest() != m["hash"]:
            return problem(400, "Invalid Resource")
        members.setdefault(m["hash"], {"email_address": body["email_address"], "status": body.get("status_if_new")})
        members[m["hash"]].update(body.get("merge_fields") or {})
        return Answer(200, {"id": m["hash"], **members[m["hash"]]})

    def on_member(status: int) -> Any:
        def handler(seen: Seen, m: re.Match[str]) -> Answer:
            if not authorised(seen):
                return problem(401, "API Key Invalid")
            if m["hash"] not in members:
                return problem(404, "Resource Not Found")
            return Answer(status)
        return handler

    member = r"/3\.0/lists/(?P<list>\w+)/members/(?P<hash>[0-9a-f]{32})"
    fake = FakeVendor([
        Route("PUT", member, put_member, schema=MEMBER),
        Route("POST", member + "/tags", on_member(204), schema=TAGS),
        Route("POST", member + "/events", on_member(204), schema=EVENT),
        Route("GET", "/3.0/ping", lambda s, _m: Answer(200, {"health_status": "Everything's Chimpy!"})
              if authorised(s) else problem(401, "API Key Invalid")),
    ])
    fake.members = members  # type: ignore[attr-defined]
    return fake
