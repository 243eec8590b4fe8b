"""The destinations: section: per-adapter settings validation with file:line:key errors."""

from __future__ import annotations

import pytest

from traitsync.config import load_config_text
from traitsync.destinations.config import parse_destinations, parse_duration
from traitsync.errors import ConfigError

GOOD = """\
space_id: spa_demo
destinations:
  - id: dst_hook
    name: Order Webhook
    kind: webhook
    settings: {url: "http://127.0.0.1:9000/hook", shared_secret: abc}
    schedule: {every: 10s}
    connections:
      - computation: vip
        send: [identify, track]
        entered_event_name: Joined
  - id: dst_file
    kind: jsonl
    settings: {path: out.jsonl}
"""


def test_parses_and_resolves() -> None:
    loaded = load_config_text(GOOD, "traitsync.yaml")
    [hook, file] = parse_destinations(loaded.document, loaded.document.data["destinations"])
    assert hook.display_name == "Order Webhook" and file.display_name == "JSONL File"
    assert hook.list_interval_s == 60.0  # the webhook's floor beats the asked 10 s
    assert file.list_interval_s == 3600.0
    assert hook.config.connections[0].send == ["identify", "track"]
    assert hook.config.connections[0].entered_event_name == "Joined"


@pytest.mark.parametrize(("fragment", "where", "what"), [
    ("    kind: brase\n", "traitsync.yaml:5 [destinations[0].kind]", "unknown destination kind 'brase'"),
    ("    kind: webhook\n    settings: {urll: x}\n", "traitsync.yaml:6 [destinations[0].settings.urll]",
     "unknown key"),
    ("    kind: segment\n    settings: {}\n", "traitsync.yaml:6 [destinations[0].settings.write_key]",
     "required key is missing"),
])
def test_errors_name_file_line_and_key(fragment: str, where: str, what: str) -> None:
    text = "space_id: spa_demo\ndestinations:\n  - id: d1\n    name: X\n" + fragment
    loaded = load_config_text(text, "traitsync.yaml")
    with pytest.raises(ConfigError) as info:
        parse_destinations(loaded.document, loaded.document.data["destinations"])
    assert str(info.value).startswith(where)
    assert what in str(info.value)


def test_duplicate_ids_and_durations() -> None:
    text = ("space_id: s\ndestinations:\n  - {id: a, kind: jsonl, settings: {path: x}}\n"
            "  - {id: a, kind: jsonl, settings: {path: y}}\n")
    loaded = load_config_text(text, "t.yaml")
    with pytest.raises(ConfigError, match="duplicate destination id 'a'"):
        parse_destinations(loaded.document, loaded.document.data["destinations"])
    assert parse_duration("90s") == 90 and parse_duration("6h") == 21600
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_schema_selects_each_adapters_settings_by_kind() -> None:
    """Editors validate `settings:` against the adapter named by `kind:` (traitsync schema)."""
    import jsonschema

    from traitsync.validation import full_json_schema

    schema = full_json_schema()
    dest_schema = {**schema["properties"]["destinations"], "$defs": schema["$defs"]}
    good = [{"id": "d", "kind": "webhook", "settings": {"url": "http://x", "batch_size": 10},
             "mappings": {"user": "$.userId"}, "filters": [{"drop_if": {"field": "type", "equals": "track"}}]}]
    jsonschema.validate(good, dest_schema)
    for bad, says in [
        ([{"id": "d", "kind": "webhook", "settings": {"url": "http://x", "batch_size": "ten"}}], "'ten'"),
        ([{"id": "d", "kind": "segment", "settings": {}}], "'write_key' is a required property"),
        ([{"id": "d", "kind": "nope"}], "'nope' is not one of"),
    ]:
        with pytest.raises(jsonschema.ValidationError) as info:
            jsonschema.validate(bad, dest_schema)
        assert says in info.value.message, info.value.message
