"""Decode the query's value columns into the Python values every engine stores (JSON-equal)."""

from __future__ import annotations

from typing import Any

import orjson


def decode(kind: str | None, raw: str | None, number: float | None, text: str | None) -> Any:
    """``(k, j, n, s)`` -> value: ``j`` is exact JSON when present (integers stay integers);
    a number without ``j`` is a float (a sum with a fraction, an average)."""
    if kind is None:
        return None
    if kind == "s":
        return text if text is not None else orjson.loads(raw or "null")
    if kind == "b":
        return raw == "true"
    if kind == "n":
        if raw is not None:
            return orjson.loads(raw)
        return None if number is None else float(number)
    return None if raw is None else orjson.loads(raw)
