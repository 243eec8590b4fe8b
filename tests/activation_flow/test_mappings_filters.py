"""Mappings and filters from traitsync.yaml change what a webhook receives; dropped messages count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, TRAIT, Receiver, config_text
from traitsync.config import load_config_text
from traitsync.delivery.overview import delivery_overview
from traitsync.errors import ConfigError
from traitsync.server.project import resolve_project


def mapped_hook(receiver: Receiver) -> str:
    return f"""\
  - id: dst_mapped
    kind: webhook
    settings: {{url: "{receiver.url}/mapped"}}
    mappings:
      user: $.userId
      audience: $.context.personas.computation_key
      member: "$.properties['{AUDIENCE}']"
      label: {{"@template": "{{{{event}}}} for {{{{userId}}}}"}}
      source: traitsync
    filters:
      - drop_if: {{field: userId, equals: u-internal}}
      - keep_if: {{field: type, in: [track]}}
    connections:
      - computation: {AUDIENCE}
        send: [identify, track]
      - computation: {TRAIT}
        send: [track]
"""


def test_mappings_shape_the_body_and_filters_drop_and_count(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(mapped_hook(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.identifier("p2", "user_id", "u-internal")
    flow.result("p1", AUDIENCE, True)
    flow.result("p2", AUDIENCE, True)
    flow.result("p1", TRAIT, 12.5)
    flow.run()
    bodies = [r.json() for r in receiver.requests]
    # identify messages were dropped by the keep_if filter; u-internal by drop_if; the trait's
    # track has no audience property, so `member` is absent rather than null.
    assert sorted(bodies, key=lambda b: b["audience"]) == [
        {"user": "u1", "audience": AUDIENCE, "member": True, "label": "Audience Entered for u1",
         "source": "traitsync"},
        {"user": "u1", "audience": TRAIT, "label": "Trait Computed for u1", "source": "traitsync"},
    ]
    conn = flow.db.connect()
    view = delivery_overview(conn, since_ms=0, until_ms=2**62, destination_id="dst_mapped")["dst_mapped"]
    conn.close()
    # p1's identify + p2's identify and track were filtered: 3 messages, one reason.
    assert view.filtered_at_destination == {"FILTERED_BY_DESTINATION_FILTER": 3}
    assert view.successful_delivery == 2


@pytest.mark.parametrize(("snippet", "where", "says"), [
    ("    mappings: {nope: $.userId}\n", "destinations[0].mappings.nope", "segment has no field 'nope' to map"),
    ("    mappings: {x: {'@fancy': 1}}\n    kind: webhook\n", "destinations[0].mappings.x",
     "unknown directive '@fancy'"),
    ("    filters: [{drop_if: {field: type}}]\n", "destinations[0].filters", "give exactly one operator"),
    ("    filters: [{drop_if: {field: type, equals: a}, keep_if: {field: type, equals: b}}]\n",
     "destinations[0].filters", "exactly one of drop_if or keep_if"),
])
def test_bad_mappings_and_filters_name_file_line_and_key(tmp_path: Path, snippet: str, where: str,
                                                         says: str) -> None:
    settings = "{url: 'http://127.0.0.1:9/x'}" if "kind:" in snippet else "{write_key: k}"
    kind = "" if "kind:" in snippet else "    kind: segment\n"
    text = config_text(f"  - id: dst_s\n{kind}    settings: {settings}\n"
                       f"{snippet}    connections:\n      - computation: {AUDIENCE}\n")
    path = tmp_path / "traitsync.yaml"
    with pytest.raises(ConfigError) as info:
        resolve_project(load_config_text(text, file=str(path)))
    message = str(info.value)
    assert str(path) in message and where in message and says in message, message
