"""Validate the whole config: the shared top level, then each stage's own sections.

Each stage validates its section against the located document, so errors keep naming the
file, line and key; this module only composes them (it is used by the CLI and the server).
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
    from traitsync.definitions import ir, ir_to_dict, load_definitions
    from traitsync.identity import load_identity_config

    config = loaded.config
    report = ValidationReport()
    report.lines.append(f"space {config.space_id}: {len(config.sources)} source(s)")
    identity = load_identity_config(loaded.document)
    report.lines.append(f"identity: {len(identity.rules)} identifier rule(s), "
                        f"{len(identity.custom_ids)} custom identifier(s)")
    definitions = load_definitions(loaded.document)
    traits = list(definitions.computed_traits)
    steps = definitions.journey_steps
    audiences = [a for a in definitions.audiences if not isinstance(a, ir.JourneyStep)]
    report.lines.append(f"definitions: {len(traits)} computed trait(s), {len(audiences)} audience(s)")
    if definitions.journeys:
        report.lines.append(f"journeys: {len(definitions.journeys)} journey(s), {len(steps)} step(s)")
    from traitsync.compute.batch.sql_traits import load_sql_traits

    sql_traits = load_sql_traits(loaded.document)
    if sql_traits:
        report.lines.append(f"sql traits: {', '.join(t.key for t in sql_traits)}")
    for extra in _stage_validators():
        report.lines.extend(extra(loaded, definitions))
    report.ir = {
        "space_id": config.space_id,
        "definitions": [ir_to_dict(definitions[key]) for key in definitions.order],
    }
    return report


def _stage_validators() -> list[Any]:
    """Validators of later stages (activation's ``destinations:``), when they are installed."""
    validators: list[Any] = []
    try:
        from traitsync.activation.config import validate_destinations_section
    except ImportError:
        return validators
    validators.append(validate_destinations_section)
    return validators


def full_json_schema() -> dict[str, Any]:
    """The top-level schema with each stage's section schema filled in."""
    from traitsync.definitions import definitions_json_schema
    from traitsync.identity import IdentityConfigModel

    schema = config_json_schema()
    props = schema["properties"]
    definitions = definitions_json_schema()
    def_props = definitions.get("properties", {})
    for key in ("computed_traits", "audiences", "journeys"):
        if key in def_props:
            props[key] = def_props[key]
    for name, sub in definitions.get("$defs", {}).items():
        schema.setdefault("$defs", {})[name] = sub
    identity = IdentityConfigModel.model_json_schema(ref_template="#/$defs/identity_{model}")
    for name, sub in identity.pop("$defs", {}).items():
        schema.setdefault("$defs", {})[f"identity_{name}"] = sub
    props["identity"] = {"anyOf": [identity, {"type": "null"}]}
    from traitsync.destinations.config import destinations_json_schema

    destinations = destinations_json_schema()
    for name, sub in destinations.pop("$defs", {}).items():
        schema.setdefault("$defs", {})[name] = sub
    props["destinations"] = destinations
    from traitsync.compute.batch.sql_traits import sql_traits_json_schema

    props["sql_traits"] = sql_traits_json_schema()
    return schema
