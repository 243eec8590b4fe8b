"""The ``traitsync.yaml`` configuration: located YAML, models, and file:line:key errors."""

from traitsync.config.loader import (
    LoadedConfig,
    config_json_schema,
    config_path_from_env,
    load_config,
    load_config_text,
    validate_model,
)
from traitsync.config.models import SourceConfig, TraitsyncConfig
from traitsync.config.yaml_lines import KeyPath, LocatedDocument, format_path

__all__ = ["KeyPath", "LoadedConfig", "LocatedDocument", "SourceConfig", "TraitsyncConfig",
           "config_json_schema", "config_path_from_env", "format_path", "load_config", "load_config_text",
           "validate_model"]
