"""Checks across definitions: key format, duplicates, references, account level, cycles.

Each entry's own grammar (operators against value types, windows, unknown keys) is checked
while it is read (``yaml_form``, ``query_language``); what is left here needs the whole set.
Errors point at the YAML path of the offending reference, found again in the raw entry so the
IR does not have to carry source positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any as AnyType

from traitsync.config.yaml_lines import KeyPath, LocatedDocument, format_path
from traitsync.definitions import ir
from traitsync.definitions.collection import find_cycle
from traitsync.errors import ConfigError

KEY_FORMAT = re.compile(r"^[a-z][a-z0-9_]{0,254}$")
CYCLE_MESSAGE = "The audience would create a cycle by referencing another audience"
TRAIT_CYCLE_MESSAGE = "The computed trait would create a cycle by referencing another computation"


@dataclass(frozen=True)
class Located:
    """A parsed definition with where it came from (its entry path and raw YAML mapping)."""

    definition: ir.Definition
    path: KeyPath
    raw: dict[str, AnyType]

    @property
    def body_path(self) -> KeyPath:
        if "query" in self.raw:
            return (*self.path, "query")
        if isinstance(self.definition, ir.Audience):
            return (*self.path, "condition")
        return (*self.path, "where")


def check_key(doc: LocatedDocument, key: str, path: KeyPath) -> None:
    if not KEY_FORMAT.match(key):
        raise doc.error(path, f"bad key {key!r}: keys are snake_case (lowercase letters, digits and _, "
                              "starting with a letter)")


def _find(raw: object, path: KeyPath, match: tuple[str, str]) -> KeyPath | None:
    """The path of the first ``{kind: key}`` (or ``{computed_trait: {key: ...}}``) in ``raw``."""
    kind, key = match
    if isinstance(raw, dict):
        for k, v in raw.items():
            if k == kind and (v == key or (isinstance(v, dict) and v.get("key") == key)):
                return (*path, k)
            found = _find(v, (*path, k), match)
            if found is not None:
                return found
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            found = _find(v, (*path, i), match)
            if found is not None:
                return found
    return None


def _query_column(located: Located, call: str, key: str) -> str:
    text = located.raw.get("query")
    if not isinstance(text, str):
        return ""
    match = re.search(rf"{call}\(\s*['\"]{re.escape(key)}['\"]", text)
    return f"column {match.start() + 1}: " if match else ""


def _reference_error(doc: LocatedDocument, located: Located, kind: str, key: str,
                     message: str) -> ConfigError:
    if "query" in located.raw:
        column = _query_column(located, "audience" if kind != "computed_trait" else "trait", key)
        return doc.error((*located.path, "query"), f"query: {column}{message}")
    kinds = ("in_audience", "not_in_audience") if kind == "audience" else ("computed_trait",)
    for name in kinds:
        found = _find(located.raw, located.path, (name, key))
        if found is not None:
            return doc.error(found, message)
    return doc.error(located.body_path, message)


def _check_references(doc: LocatedDocument, items: list[Located], by_key: dict[str, ir.Definition]) -> None:
    for located in items:
        defn = located.definition
        root = defn.condition if isinstance(defn, ir.Audience) else defn.where
        for node in ir.iter_conditions(root):
            if isinstance(node, ir.InAudience):
                target = by_key.get(node.key)
                if target is None:
                    raise _reference_error(doc, located, "audience", node.key,
                                           f"unknown audience {node.key!r} (no audience has this key)")
                if not isinstance(target, ir.Audience):
                    raise _reference_error(doc, located, "audience", node.key,
                                           f"{node.key!r} is a computed trait, not an audience; "
                                           "use a trait condition")
            elif isinstance(node, ir.TraitCondition) and node.computed:
                target = by_key.get(node.key)
                if not isinstance(target, ir.ComputedTrait):
                    raise _reference_error(
                        doc, located, "computed_trait", node.key,
                        f"unknown computed trait {node.key!r} (no computed trait has this key)")
            elif isinstance(node, ir.Quantified) and defn.options.level != "account":
                raise doc.error(located.body_path,
                                "ANY / ALL / NONE (any_user, all_users, no_users) need level: account")
        _check_levels(doc, located, root, by_key)


def _check_levels(doc: LocatedDocument, located: Located, root: ir.Condition | None,
                  by_key: dict[str, ir.Definition]) -> None:
    """An account-level definition reads account-level keys on the account and user-level keys
    inside ``ANY`` / ``ALL`` / ``NONE`` (which do not nest, nor go inside an event's where); a
    user-level definition reads user-level keys only."""
    defn = located.definition
    inside: set[int] = set()
    for node in ir.iter_conditions(root):
        if isinstance(node, ir.Quantified):
            for sub in ir.iter_conditions(node.condition):
                if isinstance(sub, ir.Quantified):
                    raise doc.error(located.body_path, "ANY / ALL / NONE cannot be used inside another one")
                inside.add(id(sub))
        elif isinstance(node, ir.Performed) and any(isinstance(sub, ir.Quantified)
                                                    for sub in ir.iter_conditions(node.where)):
            raise doc.error(located.body_path, "ANY / ALL / NONE are conditions on an account's users, "
                                               "not valid inside an event's where")
    for node in ir.iter_conditions(root):
        if not isinstance(node, ir.InAudience | ir.TraitCondition | ir.PropertyCondition):
            continue
        want = "user" if defn.options.level == "user" or id(node) in inside else "account"
        for key in sorted(node.depends_on()):
            target = by_key.get(key)
            if target is None or target.options.level == want:
                continue
            kind = "audience" if isinstance(node, ir.InAudience) else "computed_trait"
            if want == "user" and defn.options.level == "user":
                message = f"{key!r} is account-level; a user-level definition cannot read it"
            elif want == "user":
                message = f"{key!r} is account-level; inside ANY / ALL / NONE only user-level keys can be read"
            else:
                message = (f"{key!r} is user-level; an account-level definition reads it inside "
                           "ANY / ALL / NONE (for the account's users)")
            raise _reference_error(doc, located, kind, key, message)


def validate_definitions(doc: LocatedDocument, items: list[Located]) -> None:
    """Raise the first cross-definition problem as a located ConfigError."""
    by_key: dict[str, ir.Definition] = {}
    first_path: dict[str, KeyPath] = {}
    for located in items:
        key = located.definition.key
        check_key(doc, key, (*located.path, "key"))
        if key in by_key:
            raise doc.error((*located.path, "key"),
                            f"duplicate key {key!r} (already used by {format_path(first_path[key])})")
        by_key[key] = located.definition
        first_path[key] = located.path
        options = located.definition.options
        if options.lookback_seconds is not None and not options.historical:
            raise doc.error((*located.path, "lookback"), "lookback needs historical: true")
    _check_references(doc, items, by_key)
    keys = [located.definition.key for located in items]
    deps = {located.definition.key: frozenset(k for k in located.definition.depends_on() if k in by_key)
            for located in items}
    cycle = find_cycle(keys, deps)
    if cycle is not None:
        on_cycle = set(cycle)
        located = next(item for item in items if item.definition.key in on_cycle)
        message = CYCLE_MESSAGE if isinstance(located.definition, ir.Audience) else TRAIT_CYCLE_MESSAGE
        raise doc.error(located.body_path, message)
