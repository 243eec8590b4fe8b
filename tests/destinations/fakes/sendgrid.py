"""A fake SendGrid Marketing contacts API (reference destinations.md 16, schema after the
``tsg_mc_contacts_v3`` OpenAPI document): Bearer key, at most 30,000 contacts, each with an
identifier; one invalid email refuses the whole request with 400, as SendGrid does."""

from __future__ import annotations

import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CONTACTS: dict[str, Any] = {
    "type": "object", "required": ["contacts"], "additionalProperties": False,
    "properties": {
        "list_ids": {"type": "array", "items": {"type": "string"}},
        "contacts": {"type": "array", "minItems": 1, "maxItems": 30000, "items": {
            "type": "object",
            "anyOf": [{"required": ["email"]}, {"required": ["external_id"]}, {"required": ["phone_number_id"]},
                      {"required": ["anonymous_id"]}],
            "additionalProperties": False,
            "properties": {"email": {"type": "string", "maxLength": 254}, "external_id": {"type": "string"},
                           "phone_number_id": {"type": "string"}, "anonymous_id": {"type": "string"},
                           "first_name": {"type": "string"}, "last_name": {"type": "string"},
                           "address_line_1": {"type": "string"}, "address_line_2": {"type": "string"},
                           "city": {"type": "string"}, "state_province_region": {"type": "string"},
                           "postal_code": {"type": "string"}, "country": {"type": "string"},
                           "phone_number": {"type": "string"},
                           "custom_fields": {"type": "object",
                                             "propertyNames": {"pattern": "^[a-z]\\d+_[TND]$"}}}}},
    },
}


def sendgrid_fake(api_key: str) -> FakeVendor:
    def put(seen: Seen, _m: re.Match[str]) -> Answer:
        if seen.header("Authorization") != f"Bearer {api_key}":
            return Answer(401, {"errors": [{"field": None, "message": "authorization required"}]})
        for contact in seen.json()["contacts"]:
            if "email" in contact and not re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", contact["email"]):
                return Answer(400, {"errors": [{"field": "", "message": f"email '{contact['email']}' is not valid"}]})
        return Answer(202, {"job_id": "job-1"})

    return FakeVendor([
        Route("PUT", "/v3/marketing/contacts", put, schema=CONTACTS),
        Route("GET", "/v3/marketing/field_definitions",
              lambda s, _m: Answer(200, {"custom_fields": []}) if s.header("Authorization") == f"Bearer {api_key}"
              else Answer(401, {"errors": []})),
    ])
