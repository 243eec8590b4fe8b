"""The ``destinations:`` section of ``traitsync.yaml`` (DESIGN 4.1), validated per adapter.

The adapter's own settings model validates ``settings:`` (STYLE rule 2: one schema drives
config validation, JSON Schema and docs), and every error names file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from traitsync.config import KeyPath, LocatedDocument, validate_model
from traitsync.destinations.base import Destination, DestinationSettings
from traitsync.destinations.mappings import DestinationFilter, MappingError, check_mapping, merge_mappings
from traitsync.destinations.registry import ADAPTERS, get_destination

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``2d`` -> seconds."""
    text = text.strip()
    if len(text) < 2 or text[-1] not in _DURATION_UNITS:
        raise ValueError(f"duration {text!r} must be a number followed by s, m, h or d")
    try:
        return float(text[:-1]) * _DURATION_UNITS[text[-1]]
    except ValueError:
        raise ValueError(f"duration {text!r} must be a number followed by s, m, h or d") from None


SendKind = Literal["identify", "track", "group"]


def _default_send() -> list[SendKind]:
    return ["identify"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleConfig(_Strict):
    every: str = "1h"

    @model_validator(mode="after")
    def _parses(self) -> ScheduleConfig:
        parse_duration(self.every)
        return self

    @property
    def seconds(self) -> float:
        return parse_duration(self.every)


class LinkConfig(_Strict):
    """One entry of a destination's ``connections:``: a computation linked to the destination."""

    computation: str = Field(min_length=1)
    send: list[SendKind] = Field(default_factory=_default_send)
    trait_event_name: str = "Trait Computed"
    entered_event_name: str = "Audience Entered"
    exited_event_name: str = "Audience Exited"
    id_sync: dict[str, Literal["first", "last", "all"]] | None = None
    include_anonymous: bool = False
    enrich_traits: list[str] = Field(default_factory=list, description="Profile traits attached to each "
                                     "message: traits.* on identify, properties.* on track (Trait Enrichment).")

    @model_validator(mode="after")
    def _at_most_three_all(self) -> LinkConfig:
        if self.id_sync and sum(1 for s in self.id_sync.values() if s == "all") > 3:
            raise ValueError("id_sync: at most 3 identifiers may use the 'all' strategy")
        return self


class DestinationConfig(_Strict):
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str | None = None
    kind: str
    settings: dict[str, Any] = Field(default_factory=dict)
    schedule: ScheduleConfig | None = None
    rate_limit: float | None = Field(default=None, gt=0, description="Requests/second; default: the vendor's cap.")
    concurrency: int | None = Field(default=None, ge=1, le=256, description="Requests in flight at once "
                                    "(default: enough to reach the cap at 500 ms per answer, 4 to 64).")
    batch_size: int | None = Field(default=None, ge=1, description="Most messages per request; default and "
                                   "ceiling: the vendor's.")
    min_audience_size: int | None = Field(default=None, ge=0, description="List destinations: hold a new list "
                                          "until the audience has this many members; default: the vendor's "
                                          "minimum (Facebook, Google: 100).")
    mappings: dict[str, Any] = Field(default_factory=dict, description="Vendor field -> message path "
                                     "($.traits.email), literal, or @template/@first; null removes a default.")
    filters: list[DestinationFilter] = Field(default_factory=list, description="drop_if / keep_if conditions on "
                                             "message fields; dropped messages count as filtered.")
    connections: list[LinkConfig] = Field(default_factory=list)
    consent_categories: list[str] = Field(default_factory=list, description="End-user consent categories "
                                          "(context.consent.categoryPreferences) a profile must allow, every one, "
                                          "for this destination to receive anything about it")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in ADAPTERS:
            raise ValueError(f"unknown destination kind {kind!r}; known kinds: {', '.join(sorted(ADAPTERS))}")
        return kind


@dataclass(frozen=True)
class ResolvedDestination:
    """A destination entry with its adapter, parsed settings and effective field mappings."""

    config: DestinationConfig
    adapter: Destination[Any]
    settings: DestinationSettings
    mappings: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """The key in the ``integrations`` object: the configured name, else the catalog name."""
        return self.config.name or self.adapter.name

    @property
    def min_audience_size(self) -> int:
        """Members a new list waits for: the configured value, else the vendor's minimum."""
        configured = self.config.min_audience_size
        return self.adapter.min_list_size if configured is None else configured

    @property
    def list_interval_s(self) -> float:
        """Sync cadence for list destinations: hourly by default, never below the vendor floor."""
        wanted = self.config.schedule.seconds if self.config.schedule else 3600.0
        return max(wanted, self.adapter.min_list_interval_s)


def parse_destinations(doc: LocatedDocument, data: Any, base: KeyPath = ("destinations",)
                       ) -> list[ResolvedDestination]:
    """Validate every entry, its adapter settings, and that ids are unique."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise doc.error(base, "destinations must be a list")
    out: list[ResolvedDestination] = []
    seen: set[str] = set()
    for i, raw in enumerate(data):
        entry: DestinationConfig = validate_model(doc, DestinationConfig, raw, (*base, i))
        if entry.id in seen:
            raise doc.error((*base, i, "id"), f"duplicate destination id {entry.id!r}")
        seen.add(entry.id)
        adapter = get_destination(entry.kind)
        settings = validate_model(doc, adapter.settings_model, entry.settings, (*base, i, "settings"))
        for key, spec in entry.mappings.items():
            path = (*base, i, "mappings", key)
            if key not in adapter.default_mappings and not adapter.custom_fields:
                known = ", ".join(sorted(adapter.default_mappings)) or "none"
                raise doc.error(path, f"{entry.kind} has no field {key!r} to map; its fields: {known}")
            try:
                check_mapping(spec, key)
            except MappingError as exc:
                raise doc.error(path, str(exc)) from None
        ceiling = max(adapter.max_batch, adapter.list_batch)
        if entry.batch_size is not None and entry.batch_size > ceiling:
            raise doc.error((*base, i, "batch_size"), f"{entry.kind} takes at most {ceiling} per request")
        mappings = merge_mappings(adapter.default_mappings, entry.mappings)
        out.append(ResolvedDestination(config=entry, adapter=adapter, settings=settings, mappings=mappings))
    return out


def destinations_json_schema() -> dict[str, Any]:
    """The ``destinations:`` list with each adapter's settings model selected by ``kind``, so an
    editor validates ``settings:`` (and offers its keys) as soon as ``kind`` is written."""
    entry: dict[str, Any] = DestinationConfig.model_json_schema(ref_template="#/$defs/destination_{model}")
    defs: dict[str, Any] = {f"destination_{k}": v for k, v in entry.pop("$defs", {}).items()}
    entry["properties"]["kind"] = {"type": "string", "enum": sorted(ADAPTERS),
                                   "description": "The adapter: " + ", ".join(sorted(ADAPTERS))}
    branches: list[dict[str, Any]] = []
    for slug, adapter in sorted(ADAPTERS.items()):
        settings: dict[str, Any] = adapter.settings_model.model_json_schema(
            ref_template=f"#/$defs/settings_{slug}_{{model}}")
        for name, sub in settings.pop("$defs", {}).items():
            defs[f"settings_{slug}_{name}"] = sub
        defs[f"settings_{slug}"] = settings
        branches.append({"if": {"properties": {"kind": {"const": slug}}, "required": ["kind"]},
                         "then": {"properties": {"settings": {"$ref": f"#/$defs/settings_{slug}"}}}})
    entry["allOf"] = branches
    return {"type": "array", "items": entry, "$defs": defs}
