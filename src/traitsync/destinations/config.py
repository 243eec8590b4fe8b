"""The ``destinations:`` section of ``traitsync.yaml`` (DESIGN 4.1), validated per adapter.

The adapter's own settings model validates ``settings:`` (STYLE rule 2: one schema drives
config validation, JSON Schema and docs), and every error names file, line and key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from traitsync.config import KeyPath, LocatedDocument, validate_model
from traitsync.destinations.base import Destination, DestinationSettings
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


class ConnectionConfig(_Strict):
    computation: str = Field(min_length=1)
    send: list[SendKind] = Field(default_factory=_default_send)
    trait_event_name: str = "Trait Computed"
    entered_event_name: str = "Audience Entered"
    exited_event_name: str = "Audience Exited"
    id_sync: dict[str, Literal["first", "last", "all"]] | None = None
    include_anonymous: bool = False

    @model_validator(mode="after")
    def _at_most_three_all(self) -> ConnectionConfig:
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
    connections: list[ConnectionConfig] = Field(default_factory=list)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in ADAPTERS:
            raise ValueError(f"unknown destination kind {kind!r}; known kinds: {', '.join(sorted(ADAPTERS))}")
        return kind


class ResolvedDestination(BaseModel):
    """A destination entry with its adapter and parsed settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    config: DestinationConfig
    adapter: Destination[Any]
    settings: DestinationSettings

    @property
    def display_name(self) -> str:
        """The key in the ``integrations`` object: the configured name, else the catalog name."""
        return self.config.name or self.adapter.name

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
        out.append(ResolvedDestination(config=entry, adapter=adapter, settings=settings))
    return out
