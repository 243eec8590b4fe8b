"""A definition as people read it: the YAML entry as written, and its Query Language text.

The YAML is the entry of ``traitsync.yaml`` itself (re-dumped, so comments are gone but keys
keep their order). The Query Language is the ``query:`` the user wrote when there is one;
otherwise it is rendered from the definition by ``definitions.query_render``, or left out
(with the reason) for constructs that language cannot express.
"""

from __future__ import annotations

from typing import Any

import yaml

from traitsync.definitions import Definition, ir


def yaml_entry(document: Any, defn: Definition) -> str | None:
    section = "audiences" if isinstance(defn, ir.Audience) else "computed_traits"
    entries = document.get(section) if isinstance(document, dict) else None
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("key") == defn.key:
            return str(yaml.safe_dump(entry, sort_keys=False, allow_unicode=True, width=100))
    return None


def query_text(document: Any, defn: Definition) -> tuple[str | None, str | None]:
    """(query, why not): the written query, else a rendered one, else the reason there is none."""
    from traitsync.definitions.query_render import QueryRenderError, render_query

    section = "audiences" if isinstance(defn, ir.Audience) else "computed_traits"
    for entry in (document.get(section) if isinstance(document, dict) else None) or []:
        if isinstance(entry, dict) and entry.get("key") == defn.key and isinstance(entry.get("query"), str):
            return str(entry["query"]), None
    try:
        return render_query(defn), None
    except QueryRenderError as exc:
        return None, str(exc)
