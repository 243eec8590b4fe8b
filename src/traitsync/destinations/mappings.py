"""Field mappings and destination filters, as Segment users know them from Actions destinations.

**Mappings** say where each vendor field comes from. An adapter declares defaults; a
destination's ``mappings:`` overrides them key by key (``null`` removes a default)::

    mappings:
      external_id: $.userId                      # a path into the message
      audience: "$.properties['audience_key']"   # brackets for keys with dots or spaces
      source: traitsync                          # anything else is a literal
      name: {"@template": "{{traits.first_name}} {{traits.last_name}}"}
      id: {"@first": [$.userId, $.anonymousId]}  # the first path that has a value
      profile: {email: $.traits.email}           # objects nest

**Filters** keep or drop messages by a condition on their fields, like Segment's Destination
Filters: ``drop_if`` drops what matches, ``keep_if`` drops what does not. A dropped message is
recorded as filtered (``FILTERED_BY_DESTINATION_FILTER``) and counted in the Delivery Overview::

    filters:
      - drop_if: {field: context.personas.computation_key, equals: internal_testers}
      - keep_if: {field: type, in: [identify]}

Both are pure functions of the message, so they are tested without a destination.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

FILTERED_BY_DESTINATION_FILTER = "FILTERED_BY_DESTINATION_FILTER"
_MISSING = object()
_SEGMENT = re.compile(r"""\.([A-Za-z_$][\w$-]*)"""
                      r"""|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[(\d+)\]""")
_TEMPLATE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


class MappingError(ValueError):
    pass


def parse_path(path: str) -> tuple[str | int, ...]:
    """``$.a.b['c d'][0]`` (or ``a.b``) -> ``("a", "b", "c d", 0)``; raises ``MappingError``."""
    text = path.strip()
    if text == "$":
        return ()
    if text.startswith("$"):
        text = text[1:]
    elif not text.startswith((".", "[")):
        text = "." + text
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None:
            raise MappingError(f"cannot read path {path!r} at {text[pos:]!r}; use $.a.b or $['a b']")
        name, single, double, index = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(name if name is not None else (single if single is not None else double))
        pos = match.end()
    return tuple(parts)


def read_path(message: Any, path: str | tuple[str | int, ...]) -> Any:
    """The value at ``path`` in ``message``, or ``_MISSING``."""
    parts = parse_path(path) if isinstance(path, str) else path
    value = message
    for part in parts:
        indexable = isinstance(part, int) and isinstance(value, list) and -len(value) <= part < len(value)
        if indexable or (isinstance(part, str) and isinstance(value, dict) and part in value):
            value = value[part]
        else:
            return _MISSING
    return value


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and (value == "$" or value.startswith(("$.", "$[")))


def check_mapping(spec: Any, where: str = "") -> None:
    """Raise ``MappingError`` naming the key when a mapping cannot be evaluated."""
    if _is_path(spec):
        parse_path(spec)
    elif isinstance(spec, dict):
        if "@path" in spec:
            if len(spec) != 1 or not isinstance(spec["@path"], str):
                raise MappingError(f"{where or 'mapping'}: @path takes one path string")
            parse_path(spec["@path"])
        elif "@template" in spec:
            if len(spec) != 1 or not isinstance(spec["@template"], str):
                raise MappingError(f"{where or 'mapping'}: @template takes one string")
            for name in _TEMPLATE.findall(spec["@template"]):
                parse_path(name)
        elif "@first" in spec:
            if len(spec) != 1 or not isinstance(spec["@first"], list) or not spec["@first"]:
                raise MappingError(f"{where or 'mapping'}: @first takes a list of paths")
            for item in spec["@first"]:
                check_mapping(item, where)
        else:
            for key, value in spec.items():
                if isinstance(key, str) and key.startswith("@"):
                    raise MappingError(f"{where or 'mapping'}: unknown directive {key!r}; "
                                       "use @path, @template or @first")
                check_mapping(value, f"{where}.{key}" if where else str(key))
    elif isinstance(spec, list):
        for i, value in enumerate(spec):
            check_mapping(value, f"{where}[{i}]")


def evaluate(spec: Any, message: Mapping[str, Any]) -> Any:
    """One mapping value against a message; a path with no value gives ``_MISSING``."""
    if _is_path(spec):
        return read_path(message, spec)
    if isinstance(spec, dict):
        if "@path" in spec:
            return read_path(message, spec["@path"])
        if "@template" in spec:
            def fill(match: re.Match[str]) -> str:
                value = read_path(message, match.group(1))
                return "" if value is _MISSING or value is None else str(value)
            return _TEMPLATE.sub(fill, spec["@template"]).strip()
        if "@first" in spec:
            for option in spec["@first"]:
                value = evaluate(option, message)
                if value is not _MISSING and value is not None:
                    return value
            return _MISSING
        out = {k: v for k, v in ((k, evaluate(v, message)) for k, v in spec.items()) if v is not _MISSING}
        return out
    if isinstance(spec, list):
        return [v for v in (evaluate(x, message) for x in spec) if v is not _MISSING]
    return spec


def merge_mappings(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The adapter's defaults with a destination's overrides applied (``None`` removes a field)."""
    merged = dict(defaults)
    for key, value in (overrides or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def map_fields(mappings: Mapping[str, Any], message: Mapping[str, Any]) -> dict[str, Any]:
    """Every vendor field that has a value for this message."""
    out: dict[str, Any] = {}
    for key, spec in mappings.items():
        value = evaluate(spec, message)
        if value is not _MISSING:
            out[key] = value
    return out


# -- filters -----------------------------------------------------------------------------------

_OPERATORS = ("equals", "not_equals", "in", "not_in", "exists", "contains", "starts_with", "ends_with",
              "matches", "greater_than", "less_than")


class Condition(BaseModel):
    """``{field, <operator>: value}`` or ``{all: [...]}`` / ``{any: [...]}`` / ``{not: ...}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str | None = None
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    exists: bool | None = None
    contains: str | None = None
    starts_with: str | None = None
    ends_with: str | None = None
    matches: str | None = None
    greater_than: float | None = None
    less_than: float | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_shape(self) -> Condition:
        groups = [g for g in ("all", "any", "not_") if getattr(self, g) is not None]
        given = [op for op in _OPERATORS if op in self.model_fields_set or
                 (op == "in" and "in_" in self.model_fields_set)]
        if groups:
            if len(groups) > 1 or self.field is not None or given:
                raise ValueError("a condition is either {field, operator} or one of all / any / not")
            return self
        if self.field is None:
            raise ValueError("a condition needs `field` (a message path such as context.personas.computation_key)")
        try:
            parse_path(self.field)
        except MappingError as exc:
            raise ValueError(str(exc)) from None
        if len(given) != 1:
            raise ValueError(f"give exactly one operator of: {', '.join(_OPERATORS)}")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches: invalid regular expression: {exc}") from None
        return self

    def test(self, message: Mapping[str, Any]) -> bool:
        if self.all is not None:
            return all(c.test(message) for c in self.all)
        if self.any is not None:
            return any(c.test(message) for c in self.any)
        if self.not_ is not None:
            return not self.not_.test(message)
        assert self.field is not None
        value = read_path(message, self.field)
        present = value is not _MISSING
        fields = self.model_fields_set
        if "exists" in fields:
            return present == bool(self.exists)
        if "equals" in fields:
            return present and value == self.equals
        if "not_equals" in fields:
            return not present or value != self.not_equals
        if "in_" in fields:
            return present and value in (self.in_ or [])
        if "not_in" in fields:
            return not present or value not in (self.not_in or [])
        if not present or value is None:
            return False
        if "contains" in fields:
            return isinstance(value, str | list) and self.contains in value
        if "starts_with" in fields:
            return isinstance(value, str) and value.startswith(self.starts_with or "")
        if "ends_with" in fields:
            return isinstance(value, str) and value.endswith(self.ends_with or "")
        if "matches" in fields:
            return isinstance(value, str) and re.search(self.matches or "", value) is not None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if "greater_than" in fields:
            return bool(value > (self.greater_than or 0))
        return bool(value < (self.less_than or 0))


class DestinationFilter(BaseModel):
    """One rule: ``drop_if`` a condition holds, or ``keep_if`` it holds (drop otherwise)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop_if: Condition | None = None
    keep_if: Condition | None = None

    @model_validator(mode="after")
    def _one(self) -> DestinationFilter:
        if (self.drop_if is None) == (self.keep_if is None):
            raise ValueError("a filter has exactly one of drop_if or keep_if")
        return self

    def drops(self, message: Mapping[str, Any]) -> bool:
        if self.drop_if is not None:
            return self.drop_if.test(message)
        assert self.keep_if is not None
        return not self.keep_if.test(message)


def dropped_by(filters: Sequence[DestinationFilter], message: Mapping[str, Any]) -> int | None:
    """The index of the first filter that drops ``message``, or ``None`` when every one keeps it."""
    for i, rule in enumerate(filters):
        if rule.drops(message):
            return i
    return None
