"""The computation language: computed traits and audiences, from YAML or Query Language to IR.

``load_definitions`` is the one entry point the CLI, server and engines use; everything it
returns is validated, so downstream code never re-checks a definition.
"""

from __future__ import annotations

from traitsync.config.yaml_lines import LocatedDocument
from traitsync.definitions.collection import Definitions
from traitsync.definitions.ir import Audience, ComputedTrait, Definition
from traitsync.definitions.query_language import QueryError, parse_audience_query, parse_trait_query
from traitsync.definitions.schema import definitions_json_schema
from traitsync.definitions.serialize import ir_from_dict, ir_to_dict
from traitsync.definitions.validate import Located, validate_definitions
from traitsync.definitions.yaml_form import audience_from_yaml, trait_from_yaml

__all__ = ["Audience", "ComputedTrait", "Definition", "Definitions", "QueryError", "definitions_json_schema",
           "ir_from_dict", "ir_to_dict", "load_definitions", "parse_audience_query", "parse_trait_query"]


def load_definitions(doc: LocatedDocument) -> Definitions:
    """Read ``computed_traits:`` and ``audiences:`` of ``doc`` (both optional) into Definitions.

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
    validate_definitions(doc, items)
    return Definitions(item.definition for item in items)
