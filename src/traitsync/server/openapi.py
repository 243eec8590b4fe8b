"""The OpenAPI document as a contract: security schemes, every status and every body.

Routes declare what is particular to them (a 409, a body schema); this module adds what every
route of one API shares, so that a route added later cannot forget it: which credential it
takes, the error statuses its API answers (401 without the credential, 403 for a token whose
role may not do it, 400 for a bad parameter, 404 for an unknown path id) and their body shape.
A schemathesis run over the document (``tests/test_api_contract.py``) holds the server to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

#: One entry per credential. Write keys and the access secret are Basic user names (empty
#: password), as Segment's clients send them; management tokens are Bearer tokens.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "writeKey": {"type": "http", "scheme": "basic",
                 "description": "A source's write key as the Basic-auth user name, empty password "
                                "(or `writeKey` in the JSON body)."},
    "accessSecret": {"type": "http", "scheme": "basic",
                     "description": "The space's Profile API access secret as the Basic-auth user name, "
                                    "empty password."},
    "managementToken": {"type": "http", "scheme": "bearer",
                        "description": "A management token from traitsync.yaml or `traitsync tokens`; "
                                       "read-only tokens may only GET."},
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
PROFILE_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"$ref": "#/components/schemas/Error"}},
}

_MANAGEMENT_ERRORS: dict[str, str] = {
    "401": "No management token, or an unknown one",
    "403": "The token's role may not do this (read-only tokens may only read)",
}
_HEALTH = {"type": "object", "required": ["status", "version", "storage"],
           "properties": {"status": {"type": "string", "enum": ["ok", "degraded"]},
                          "version": {"type": "string"}, "storage": {"type": "string"}}}


def family(path: str) -> str:
    """Which API a path belongs to: tracking, profile, management or operations."""
    if path.startswith("/api/"):
        return "management"
    if path.startswith("/v1/spaces/"):
        return "profile"
    if path.startswith("/v1/"):
        return "tracking"
    return "operations"


_SECURITY: dict[str, list[dict[str, list[str]]]] = {"tracking": [{"writeKey": []}], "profile": [{"accessSecret": []}],
             "management": [{"managementToken": []}], "operations": []}


def _error(description: str, ref: str = "#/components/schemas/Error") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _complete_management(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    validation = responses.pop("422", None)
    params = operation.get("parameters", [])
    if validation is not None or params or "requestBody" in operation:
        responses.setdefault("400", _error("A parameter or the body is invalid"))
    if "{" in path:
        responses.setdefault("404", _error("No such " + path.rsplit("{", 1)[1].split("}")[0].replace("_", " ")))
    for status, description in _MANAGEMENT_ERRORS.items():
        responses.setdefault(status, _error(description))
    for status, response in responses.items():
        if status.startswith(("4", "5")) and "content" not in response:
            response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add security schemes, each operation's security and its API's shared error answers."""
    components = document.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["ProfileError"] = PROFILE_ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in document.get("paths", {}).items():
        kind = family(path)
        for operation in item.values():
            operation.setdefault("security", _SECURITY[kind])
            if kind == "management":
                _complete_management(path, operation)
            elif "422" in operation.get("responses", {}):
                operation["responses"].pop("422")
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Storage commits", "content": {"application/json": {"schema": _HEALTH}}},
    503: {"description": "Storage cannot commit; the Tracking API answers 503 meanwhile",
          "content": {"application/json": {"schema": _HEALTH}}},
}
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text exposition format",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
}
#: /metrics takes a management token unless ``management_api.public_metrics`` is set.
METRICS_SECURITY: dict[str, Any] = {
    "security": [{"managementToken": []}],
    "responses": {"401": _error("No management token, or an unknown one")},
}

_SOURCE = {"type": "object", "required": ["id", "name", "enabled", "rate_limit"],
           "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]},
                          "enabled": {"type": "boolean"}, "rate_limit": {"type": ["object", "null"]}}}
SOURCES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every source (never its write key)",
          "content": {"application/json": {"schema": {"type": "array", "items": _SOURCE}}}}}
_NULLABLE = {"type": ["string", "null"]}
SOURCE_DEBUGGER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The newest events and rejections of the source", "content": {"application/json": {
        "schema": {"type": "object", "required": ["source_id", "events", "rejections"], "properties": {
            "source_id": {"type": "string"},
            "events": {"type": "array", "items": {"type": "object", "required": ["offset", "messageId", "type"],
                       "properties": {"offset": {"type": "integer"}, "messageId": {"type": "string"},
                                      "type": {"type": "string"}, "event": _NULLABLE, "receivedAt": _NULLABLE,
                                      "body": {"type": "object"}}}},
            "rejections": {"type": "array", "items": {"type": "object", "required": ["received_at_ms", "code"],
                           "properties": {"received_at_ms": {"type": "integer"}, "code": {"type": "string"},
                                          "message": {"type": "string"}, "message_id": _NULLABLE,
                                          "batch_index": {"type": ["integer", "null"]},
                                          "body": {"type": ["string", "null"],
                                                   "description": "the refused JSON, truncated; null when it "
                                                                  "is a suppressed person's data"}}}},
        }}}}}}
