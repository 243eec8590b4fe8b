"""A fake Mailchimp audience with static segments: batch subscribe, segment create, segment add/remove.

Bodies are validated against JSON Schemas written from the Marketing API reference (reference
section 7; Mailchimp publishes no OpenAPI document for the Marketing API): ``POST /3.0/lists/<id>
{members: 1..500, update_existing}``, ``POST /3.0/lists/<id>/segments {name, static_segment}``,
``POST /3.0/lists/<id>/segments/<segment> {members_to_add | members_to_remove: 1..500}``. Like
Mailchimp, batch answers are 200 with per-member ``errors`` (quoting the email), members already in
the audience come back as ``ERROR_CONTACT_EXISTS`` when ``update_existing`` is false, and emails not
in the audience are ignored by a segment add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen
from traitsync.destinations.vendors._engage import basic

API_KEY = "0123456789abcdef0123456789abcdef-us6"
AUDIENCE = "a1b2c3d4e5"
EMAILS = {"type": "array", "minItems": 1, "maxItems": 500, "items": {"type": "string", "minLength": 3}}
SUBSCRIBE = {"type": "object", "required": ["members"], "additionalProperties": False, "properties": {
    "members": {"type": "array", "minItems": 1, "maxItems": 500, "items": {
        "type": "object", "required": ["email_address", "status"], "additionalProperties": False, "properties": {
            "email_address": {"type": "string", "minLength": 3},
            "status": {"enum": ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]}}}},
    "update_existing": {"type": "boolean"}}}
SEGMENT = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "static_segment": {"type": "array", "items": {"type": "string"}}}}
MEMBERS = {"type": "object", "minProperties": 1, "additionalProperties": False,
           "properties": {"members_to_add": EMAILS, "members_to_remove": EMAILS}}


def problem(status: int, title: str, detail: str) -> Answer:
    return Answer(status, {"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title,
                           "status": status, "detail": detail, "instance": "c3d2-11"},
                  {"Content-Type": "application/problem+json"})


@dataclass
class MailchimpListsFake:
    fake: FakeVendor
    audience: dict[str, str] = field(default_factory=dict)  # email -> status
    segments: dict[str, dict[str, object]] = field(default_factory=dict)  # id -> {name, members}
    #: Emails Mailchimp refuses to subscribe (e.g. a fake-looking address).
    invalid: set[str] = field(default_factory=set)
    made: int = 0

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()

    def members(self, segment_id: str) -> set[str]:
        found = self.segments[segment_id]["members"]
        assert isinstance(found, set)
        return found


def mailchimp_lists_fake() -> MailchimpListsFake:
    state: MailchimpListsFake

    def denied(seen: Seen, audience: str) -> Answer | None:
        if seen.header("Authorization") != basic("traitsync", API_KEY):
            return problem(401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the "
                           "wrong datacenter.")
        if audience != AUDIENCE:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        return None

    def subscribe(seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := denied(seen, m.group(1))) is not None:
            return refused
        body = seen.json()
        new, errors = [], []
        for one in body["members"]:
            email = one["email_address"]
            if email in state.invalid:
                errors.append({"email_address": email, "error": f"{email} looks fake or invalid, please enter a"
                               " real email address.", "error_code": "ERROR_GENERIC"})
            elif email in state.audience and not body.get("update_existing"):
                errors.append({"email_address": email, "error": f"{email} is already a list member.",
                               "error_code": "ERROR_CONTACT_EXISTS"})
            else:
                state.audience[email] = one["status"]
                new.append({"email_address": email, "status": one["status"]})
        return Answer(200, {"new_members": new, "updated_members": [], "errors": errors, "total_created": len(new),
                            "total_updated": 0, "error_count": len(errors)})

    def create(seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := denied(seen, m.group(1))) is not None:
            return refused
        state.made += 1
        segment_id = str(4000 + state.made)
        state.segments[segment_id] = {"name": seen.json()["name"], "members": set()}
        return Answer(200, {"id": int(segment_id), "name": seen.json()["name"], "member_count": 0, "type": "static",
                            "list_id": AUDIENCE})

    def members(seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := denied(seen, m.group(1))) is not None:
            return refused
        segment = state.segments.get(m.group(2))
        if segment is None:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        held = segment["members"]
        assert isinstance(held, set)
        body = seen.json()
        added = [e for e in body.get("members_to_add", []) if e in state.audience and e not in held]
        removed = [e for e in body.get("members_to_remove", []) if e in held]
        held.update(added)
        held.difference_update(removed)
        missing = [e for e in body.get("members_to_add", []) if e not in state.audience]
        errors = [{"email_addresses": missing, "error": "Email addresses are not subscribed to the list"}] if missing \
            else []
        return Answer(200, {"members_added": [{"email_address": e} for e in added],
                            "members_removed": [{"email_address": e} for e in removed], "errors": errors,
                            "total_added": len(added), "total_removed": len(removed), "error_count": len(errors)})

    fake = FakeVendor([
        Route("POST", r"/3\.0/lists/(\w+)", subscribe, schema=SUBSCRIBE),
        Route("POST", r"/3\.0/lists/(\w+)/segments", create, schema=SEGMENT),
        Route("POST", r"/3\.0/lists/(\w+)/segments/(\d+)", members, schema=MEMBERS),
        Route("GET", r"/3\.0/lists/(\w+)", lambda seen, m: denied(seen, m.group(1)) or Answer(200, {"id": AUDIENCE})),
    ])
    state = MailchimpListsFake(fake)
    fake.start()
    return state
