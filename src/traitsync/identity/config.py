"""The ``identity:`` section of ``traitsync.yaml`` and its compiled, fast-to-query form.

Defaults follow Segment's Identity Resolution (segment-spec 2.2-2.5): ``user_id`` limited to
1 ever, every other type to 5 ever, priority user_id, email, then alphabetical, the suggested
blocked values on, caps of 100 merges and 1,000 mappings per profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from traitsync.config.loader import validate_model
from traitsync.config.models import AccountsConfig
from traitsync.config.yaml_lines import LocatedDocument

#: Segment's suggested blocked values, on unless ``suggested_blocked_values: false``.
SUGGESTED_BLOCKED_EXACT = ("-1", "null", "anonymous", "undefined")
SUGGESTED_BLOCKED_REGEX = (r"^[0-]*$",)
DEFAULT_TYPES = ("user_id", "email", "anonymous_id", "group_id", "android.id", "android.idfa",
                 "android.push_token", "ios.id", "ios.idfa", "ios.push_token", "ga_client_id")
_PERIODS = {"ever": None, "weekly": 7, "monthly": 30, "annually": 365}
_DAYS = re.compile(r"^\s*(\d+)\s*days?\s*$")
_LIMIT_TEXT = re.compile(r"^\s*(\d+)\s+(.+?)\s*$")
DAY_MS = 86_400_000


def parse_period(text: str) -> int | None:
    """``ever`` -> None; ``weekly``/``monthly``/``annually`` -> 7/30/365 days; ``N days`` -> N."""
    key = text.strip().lower()
    if key in _PERIODS:
        return _PERIODS[key]
    match = _DAYS.match(key)
    if match and int(match.group(1)) > 0:
        return int(match.group(1))
    raise ValueError(f"period must be ever, weekly, monthly, annually or 'N days', not {text!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlockedRegex(_Strict):
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


BlockedValue = str | BlockedRegex


class IdentityRule(_Strict):
    """One row of the Identity Resolution table: a type's limit, period, priority pin and blocks."""

    id_type: str = Field(min_length=1, max_length=200)
    limit: int | str = 5
    period: str | None = None
    priority: int | None = Field(default=None, ge=1)
    blocked_values: list[BlockedValue] = Field(default_factory=list)

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            parse_period(value)
        return value

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("limit must be at least 1")
            return value
        match = _LIMIT_TEXT.match(value)
        if not match or int(match.group(1)) < 1:
            raise ValueError("limit is a number, or a number and a period such as '5 weekly'")
        parse_period(match.group(2))
        return value


class CustomId(_Strict):
    """A custom identifier; ``keys`` name trait/property keys to read (default: the type itself)."""

    id_type: str = Field(min_length=1, max_length=200, pattern=r"^[a-z0-9_.\-]+$")
    keys: list[str] = Field(default_factory=list)


class Caps(_Strict):
    merges: int = Field(default=100, ge=0)
    mappings: int = Field(default=1000, ge=1)


class IdentityConfigModel(_Strict):
    rules: list[IdentityRule] = Field(default_factory=list)
    blocked_values: list[BlockedValue] = Field(default_factory=list)
    suggested_blocked_values: bool = True
    custom_ids: list[str | CustomId] = Field(default_factory=list)
    caps: Caps = Field(default_factory=Caps)


@dataclass(frozen=True)
class TypeRule:
    """The compiled rule of one identifier type."""

    limit: int
    period_days: int | None
    exact_blocked: frozenset[str]
    regex_blocked: tuple[re.Pattern[str], ...]
    priority: int | None
    _combined: re.Pattern[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # One alternation is much cheaper than trying each pattern in turn on the hot path.
        if self.regex_blocked:
            combined = re.compile("|".join(f"(?:{r.pattern})" for r in self.regex_blocked))
            object.__setattr__(self, "_combined", combined)

    def blocks(self, value: str) -> bool:
        if value in self.exact_blocked:
            return True
        return self._combined is not None and self._combined.search(value) is not None


@dataclass(frozen=True)
class IdentityConfig:
    """Everything the resolver reads, precompiled; build it with ``load_identity_config``."""

    rules: dict[str, TypeRule]
    default_rule: TypeRule
    custom_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_merges: int = 100
    max_mappings: int = 1000
    custom_variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``accounts.membership``: "many" (every account grouped with) or "latest" (a group call moves).
    account_membership: str = "many"

    def __post_init__(self) -> None:
        from traitsync.identity.extract import key_variants

        variants = {t: tuple(dict.fromkeys(v for k in keys for v in key_variants(k)))
                    for t, keys in self.custom_ids.items()}
        object.__setattr__(self, "custom_variants", variants)

    def rule(self, id_type: str) -> TypeRule:
        """The rule of a type; an undeclared type gets the default (limit 5 ever), as Segment does."""
        found = self.rules.get(id_type)
        return found if found is not None else self.default_rule

    def priority_key(self, id_type: str) -> tuple[int, int, str]:
        """Smaller is stronger: pins first by number, then user_id, email, then alphabetical."""
        pin = self.rule(id_type).priority
        if pin is not None:
            return (pin, 0, id_type)
        default = 1 if id_type == "user_id" else 2 if id_type == "email" else 3
        return (default, 1, id_type)


def _split(values: list[BlockedValue]) -> tuple[set[str], list[re.Pattern[str]]]:
    exact: set[str] = set()
    regex: list[re.Pattern[str]] = []
    for item in values:
        if isinstance(item, BlockedRegex):
            regex.append(re.compile(item.regex))
        else:
            exact.add(item)
    return exact, regex


def compile_identity_config(model: IdentityConfigModel) -> IdentityConfig:
    shared_exact, shared_regex = _split(model.blocked_values)
    if model.suggested_blocked_values:
        shared_exact |= set(SUGGESTED_BLOCKED_EXACT)
        shared_regex.extend(re.compile(r) for r in SUGGESTED_BLOCKED_REGEX)

    def make(limit: int, period: int | None, blocked: list[BlockedValue], priority: int | None) -> TypeRule:
        exact, regex = _split(blocked)
        return TypeRule(limit, period, frozenset(shared_exact | exact), (*shared_regex, *regex), priority)

    rules: dict[str, TypeRule] = {"user_id": make(1, None, [], None)}
    for rule in model.rules:
        if isinstance(rule.limit, str):
            match = _LIMIT_TEXT.match(rule.limit)
            assert match is not None
            limit, period = int(match.group(1)), parse_period(match.group(2))
        else:
            limit, period = rule.limit, parse_period(rule.period) if rule.period else None
        rules[rule.id_type] = make(limit, period, list(rule.blocked_values), rule.priority)
    custom: dict[str, tuple[str, ...]] = {}
    for item in model.custom_ids:
        entry = item if isinstance(item, CustomId) else CustomId(id_type=item)
        custom[entry.id_type] = tuple(entry.keys) or (entry.id_type,)
    return IdentityConfig(rules=rules, default_rule=make(5, None, [], None), custom_ids=custom,
                          max_merges=model.caps.merges, max_mappings=model.caps.mappings)


def default_identity_config() -> IdentityConfig:
    return compile_identity_config(IdentityConfigModel())


def identity_config_from_dict(data: dict[str, Any] | None) -> IdentityConfig:
    """For tests and embedding: validate a plain dict (no file/line in errors)."""
    return compile_identity_config(IdentityConfigModel.model_validate(data or {}))


def _membership(doc: LocatedDocument) -> str:
    data = doc.data.get("accounts") if isinstance(doc.data, dict) else None
    if data is None:
        return "many"
    model: AccountsConfig = validate_model(doc, AccountsConfig, data, ("accounts",))
    return model.membership


def load_identity_config(doc: LocatedDocument) -> IdentityConfig:
    """Validate ``identity:`` (and ``accounts:``) of a located document; errors name file, line and key."""
    membership = _membership(doc)
    data = doc.data.get("identity") if isinstance(doc.data, dict) else None
    if data is None:
        return replace(default_identity_config(), account_membership=membership)
    model: IdentityConfigModel = validate_model(doc, IdentityConfigModel, data, ("identity",))
    seen: set[str] = set()
    for i, rule in enumerate(model.rules):
        if rule.id_type in seen:
            raise doc.error(("identity", "rules", i, "id_type"), f"duplicate rule for {rule.id_type!r}")
        seen.add(rule.id_type)
    return replace(compile_identity_config(model), account_membership=membership)
