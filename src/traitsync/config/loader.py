"""Find, read and validate ``traitsync.yaml``; turn pydantic errors into file:line [key] errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from traitsync.config.models import TraitsyncConfig
from traitsync.config.yaml_lines import KeyPath, LocatedDocument, load_yaml_file, load_yaml_text
from traitsync.errors import ConfigError

DEFAULT_CONFIG_FILE = "traitsync.yaml"


def config_path_from_env(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TRAITSYNC_CONFIG", DEFAULT_CONFIG_FILE))


@dataclass
class LoadedConfig:
    """The validated config plus the located document, for stages that validate their own parts."""

    config: TraitsyncConfig
    document: LocatedDocument

    @property
    def file(self) -> str:
        return self.document.file


def _pydantic_message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check its spelling against `traitsync schema`)"
    if kind == "missing":
        return "required key is missing"
    return str(err.get("msg", "invalid value"))


def validate_model(doc: LocatedDocument, model: type[Any], data: Any, base: KeyPath = ()) -> Any:
    """Validate ``data`` with a pydantic model; the first error names file, line and key path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes the real one "missing": report the unknown key first.
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        first = errors[0]
        path: KeyPath = (*base, *first["loc"])
        message = _pydantic_message(dict(first))
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        raise doc.error(path, message) from None


def parse_config(doc: LocatedDocument) -> LoadedConfig:
    if not isinstance(doc.data, dict):
        raise doc.error((), "the config must be a mapping of keys (space_id, sources, ...)")
    config = validate_model(doc, TraitsyncConfig, doc.data)
    seen: dict[str, int] = {}
    for i, source in enumerate(config.sources):
        if source.id in seen:
            raise doc.error(("sources", i, "id"), f"duplicate source id {source.id!r}")
        seen[source.id] = i
    keys: dict[str, int] = {}
    for i, source in enumerate(config.sources):
        key = source.write_key.get_secret_value()
        if key in keys:
            raise doc.error(("sources", i, "write_key"), "two sources share one write key")
        keys[key] = i
    return LoadedConfig(config=config, document=doc)


def load_config(path: str | Path | None = None) -> LoadedConfig:
    return parse_config(load_yaml_file(config_path_from_env(path)))


def load_config_text(text: str, file: str = "<string>") -> LoadedConfig:
    return parse_config(load_yaml_text(text, file=file))


def config_json_schema() -> dict[str, Any]:
    schema: dict[str, Any] = TraitsyncConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "traitsync.yaml"
    return schema


__all__ = ["ConfigError", "LoadedConfig", "config_json_schema", "load_config", "load_config_text",
           "validate_model"]
