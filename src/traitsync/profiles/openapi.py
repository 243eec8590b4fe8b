"""OpenAPI parts of the Profile API: its query parameters, answers and error statuses.

The routes parse their query strings by hand (see ``api.py``), so FastAPI cannot see the
parameters; they are declared here, beside the body shapes, and the routes attach them with
``openapi_extra``.
"""

from __future__ import annotations

from typing import Any

_JSON = "application/json"
_ERROR = {"$ref": "#/components/schemas/ProfileError"}
#: Space ids and collections are plain names; the pattern keeps generated ones to one path segment.
NAME_PATTERN = r"^[A-Za-z0-9_\-]+$"

_CURSOR = {"type": "object", "required": ["url", "has_more", "next", "limit"],
           "properties": {"url": {"type": "string"}, "has_more": {"type": "boolean"},
                          "next": {"type": "string"}, "limit": {"type": "integer"}}}
_EXTERNAL_ID = {"type": "object", "required": ["id", "type", "collection"],
                "properties": {"source_id": {"type": ["string", "null"]}, "collection": {"type": "string"},
                               "id": {"type": "string"}, "type": {"type": "string"},
                               "created_at": {"type": ["string", "null"]}, "encoding": {"type": "string"},
                               "first_message_id": {"type": ["string", "null"]}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _limit(default: int, high: int) -> dict[str, Any]:
    return _query("limit", f"Page size (default {default})", {"type": "integer", "minimum": 1, "maximum": high})


_NEXT = _query("next", "The cursor's `next` from the previous page", {"type": "string"})
_VERBOSE = _query("verbose", "true: each value with its source and update time", {"type": "boolean"})
_INCLUDE = _query("include", "Comma-separated keys to return (default: all)", {"type": "string"})


def _errors(*statuses: int) -> dict[str, Any]:
    descriptions = {
        400: "A parameter is invalid (`invalid_request_error`, `validation_error`, `bad_request`)",
        401: "`authentication_error`: no access secret, or a wrong one",
        404: "`not_found`: no such space or profile",
        429: "`rate_limit_error`: over the space's request rate; see Retry-After",
    }
    return {str(s): {"description": descriptions[s], "content": {_JSON: {"schema": _ERROR}}} for s in statuses}


def operation(body: dict[str, Any], *parameters: dict[str, Any], request: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """``openapi_extra`` for one route: its query parameters, its 200 body and the shared errors."""
    extra: dict[str, Any] = {
        "parameters": list(parameters),
        "responses": {"200": {"description": "OK", "content": {_JSON: {"schema": body}}},
                      **_errors(400, 401, 404, 429)},
    }
    if request is not None:
        extra["requestBody"] = {"required": True, "content": {_JSON: {"schema": request}}}
    return extra


def _paged(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key, "cursor"],
            "properties": {key: item, "cursor": _CURSOR}}


TRAITS = operation(
    _paged("traits", {"type": "object", "description": "trait key -> value (verbose: {value, source_id, "
                      "updated_at})"}),
    _INCLUDE, _limit(10, 200), _VERBOSE, _NEXT,
    _query("class", "audience or computed_trait: only those values", {"type": "string"}))
EXTERNAL_IDS = operation(_paged("data", {"type": "array", "items": _EXTERNAL_ID}),
                         _INCLUDE, _limit(25, 100), _VERBOSE, _NEXT)
EVENTS = operation(
    _paged("data", {"type": "array", "items": {"type": "object"}}),
    _limit(10, 100), _NEXT,
    _query("start", "ISO-8601: events at or after", {"type": "string"}),
    _query("end", "ISO-8601: events before", {"type": "string"}),
    _query("include", "Comma-separated event names to return", {"type": "string"}),
    _query("exclude", "Comma-separated event names to leave out", {"type": "string"}),
    _query("sort", "asc or desc (default)", {"type": "string"}))
LINKS = operation(_paged("data", {"type": "array", "items": {"type": "object"}}), _limit(20, 100))
METADATA = operation({"type": "object", "required": ["metadata"], "properties": {"metadata": {"type": "object"}}},
                     _VERBOSE)
DELETE_EXTERNAL_ID = operation(
    {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    request={"type": "object", "required": ["delete_external_ids"],
             "properties": {"delete_external_ids": {"type": "array", "items": {
                 "type": "object", "required": ["id", "type"],
                 "properties": {"id": {"type": "string"}, "type": {"type": "string"}}}}}})
