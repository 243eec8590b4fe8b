"""JSONL file destination: one APPEND request with one line per message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from traitsync.destinations.base import items_of
from traitsync.destinations.jsonl import DESTINATION, JsonlSettings, build


def test_append_lines(tmp_path: Path) -> None:
    s = JsonlSettings.model_validate({"path": str(tmp_path / "out.jsonl")})
    [req] = build(items_of([{"a": 1}, {"b": "é"}]), s)
    assert req.method == "APPEND" and req.url == (tmp_path / "out.jsonl").as_uri()
    assert req.body == '{"a":1}\n{"b":"é"}\n'.encode()
    assert req.indices == (0, 1)


def test_endpoint_override_and_validation(tmp_path: Path) -> None:
    s = JsonlSettings.model_validate({"path": "ignored.jsonl", "endpoint": (tmp_path / "x.jsonl").as_uri()})
    assert s.file_url == (tmp_path / "x.jsonl").as_uri()
    with pytest.raises(ValidationError):
        JsonlSettings.model_validate({})
    assert DESTINATION.supports({"type": "audience_list"}) and DESTINATION.supports({"type": "track"})
