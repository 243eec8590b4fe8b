"""The computation language: computed traits and audiences, from YAML or Query Language to IR.

``load_definitions`` is the one entry point the CLI, server and engines use; everything it
returns is validated, so downstream code never re-checks a definition.
"""

from __future__ import annotations

from traitsync.config.yaml_lines import LocatedDocument
from traitsync.definitions.collection import Definitions
from traitsync.definitions.ir import Audience, ComputedTrait, Definition
from traitsync.definitions.journey_form import journey_from_yaml
from traitsync.definitions.journey_model import Journey, JourneyNode
from traitsync.definitions.query_language import QueryError, parse_audience_query, parse_trait_query
from traitsync.definitions.schema import definitions_json_schema
from traitsync.definitions.serialize import ir_from_dict, ir_to_dict
from traitsync.definitions.validate import Located, validate_definitions
from traitsync.definitions.yaml_form import audience_from_yaml, trait_from_yaml

__all__ = ["Audience", "ComputedTrait", "Definition", "Definitions", "Journey", "JourneyNode", "QueryError",
           "definitions_json_schema",
           "ir_from_dict", "ir_to_dict", "load_definitions", "parse_audience_query", "parse_trait_query"]


def load_definitions(doc: LocatedDocument) -> Definitions:
    """Read ``computed_traits:``, ``audiences:`` and ``journeys:`` of ``doc`` (all optional) into Definitions.

    Each journey step becomes one more audience (keyed ``j_o_...``), checked with the others.

    Raises the first problem as a ``ConfigError`` naming file, line and key path.
    """
    data = doc.data if isinstance(doc.data, dict) else {}
    items: list[Located] = []
    for section, reader in (("computed_traits", trait_from_yaml), ("audiences", audience_from_yaml)):
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise doc.error((section,), f"{section} must be a list")
        for i, entry in enumerate(entries):
            path = (section, i)
            defn: Definition = reader(doc, entry, path)
            items.append(Located(defn, path, entry))
    journeys = _load_journeys(doc, data, items)
    validate_definitions(doc, items)
    return Definitions((item.definition for item in items), journeys=journeys)


def _load_journeys(doc: LocatedDocument, data: dict[str, object], items: list[Located]) -> list[Journey]:
    entries = data.get("journeys")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise doc.error(("journeys",), "journeys must be a list")
    journeys: list[Journey] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        journey, steps = journey_from_yaml(doc, entry, ("journeys", i))
        if journey.key in seen:
            raise doc.error(("journeys", i, "key"), f"duplicate journey key {journey.key!r}")
        seen.add(journey.key)
        journeys.append(journey)
        for node, step in zip(journey.steps, steps, strict=True):
            items.append(Located(step, node.path, _raw_at(doc.data, node.path)))
    return journeys


def _raw_at(data: object, path: tuple[str | int, ...]) -> dict[str, object]:
    """The raw YAML mapping at ``path`` (for error locations inside a step)."""
    node = data
    for part in path:
        node = node[part] if isinstance(node, dict | list) else None  # type: ignore[index]
    return node if isinstance(node, dict) else {}
