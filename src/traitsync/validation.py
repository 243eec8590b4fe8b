"""Validate the whole config: the shared top level, then each stage's own sections.

Stages that are not built yet simply contribute nothing; each one that exists validates its
section against the located document, so errors keep naming the file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from traitsync.config import LoadedConfig, config_json_schema


@dataclass
class ValidationReport:
    lines: list[str] = field(default_factory=list)
    ir: dict[str, Any] = field(default_factory=dict)


def validate_everything(loaded: LoadedConfig) -> ValidationReport:
    config = loaded.config
    report = ValidationReport()
    report.lines.append(f"space {config.space_id}: {len(config.sources)} source(s)")
    report.ir["space_id"] = config.space_id
    return report


def full_json_schema() -> dict[str, Any]:
    return config_json_schema()
