"""A fake Amplitude ingestion API (reference destinations.md 22): ``/2/httpapi`` JSON with the
key in the body and ``/identify`` form posts; ids shorter than 5 characters are refused with the
per-event indices Amplitude reports."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

_IDS = {"user_id": {"type": "string"}, "device_id": {"type": "string"}}
HTTPAPI: dict[str, Any] = {
    "type": "object", "required": ["api_key", "events"], "additionalProperties": False,
    "properties": {
        "api_key": {"type": "string", "minLength": 1},
        "options": {"type": "object", "properties": {"min_id_length": {"type": "integer"}}},
        "events": {"type": "array", "minItems": 1, "maxItems": 2000, "items": {
            "type": "object", "required": ["event_type"],
            "anyOf": [{"required": ["user_id"]}, {"required": ["device_id"]}],
            "properties": {**_IDS, "event_type": {"type": "string", "minLength": 1},
                           "time": {"type": "integer", "minimum": 1_000_000_000_000},
                           "event_properties": {"type": "object"}, "user_properties": {"type": "object"},
                           "insert_id": {"type": "string"}}}},
    },
}
IDENTIFY_FORM = {"type": "object", "required": ["api_key", "identification"], "additionalProperties": False,
                 "properties": {"api_key": {"type": "string"}, "identification": {"type": "string"}}}
IDENTIFICATION = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["user_properties"],
    "anyOf": [{"required": ["user_id"]}, {"required": ["device_id"]}],
    "properties": {**_IDS, "user_properties": {"type": "object"}}}}


def amplitude_fake(api_key: str) -> FakeVendor:
    def httpapi(seen: Seen, _m: re.Match[str]) -> Answer:
        body = seen.json()
        if body["api_key"] != api_key:
            return Answer(400, {"code": 400, "error": "Invalid API key"})
        short = [i for i, e in enumerate(body["events"]) if len(e.get("user_id") or e.get("device_id") or "") < 5]
        if short:
            return Answer(400, {"code": 400, "error": "Request missing required field",
                                "events_with_invalid_fields": {"user_id": short}})
        return Answer(200, {"code": 200, "events_ingested": len(body["events"]), "payload_size_bytes": len(seen.body),
                            "server_upload_time": 1})

    def identify(seen: Seen, _m: re.Match[str]) -> Answer:
        import jsonschema

        form = {k: v[0] for k, v in seen.form().items()}
        if form.get("api_key") != api_key:
            return Answer(400, "invalid_api_key")
        try:
            jsonschema.validate(json.loads(form["identification"]), IDENTIFICATION)
        except (ValueError, jsonschema.ValidationError) as exc:
            return Answer(400, f"bad identification: {exc}")
        return Answer(200, "success")

    return FakeVendor([Route("POST", "/2/httpapi", httpapi, schema=HTTPAPI),
                       Route("POST", "/identify", identify, schema=IDENTIFY_FORM, form=True)])
