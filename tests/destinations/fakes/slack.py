"""A fake Slack incoming webhook (reference destinations.md 15): ``{text, channel?, username?,
icon_emoji?}`` bodies, plain-text ``ok`` answers, Slack's plain-text error codes."""

from __future__ import annotations

from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route

PATH = "/services/T000/B000/XXXXSECRET"
MESSAGE: dict[str, Any] = {
    "type": "object", "required": ["text"], "additionalProperties": False,
    "properties": {"text": {"type": "string", "minLength": 1}, "channel": {"type": "string"},
                   "username": {"type": "string"}, "icon_emoji": {"type": "string", "pattern": "^:.+:$"},
                   "icon_url": {"type": "string"}, "blocks": {"type": "array"}},
}


def slack_fake() -> FakeVendor:
    return FakeVendor([Route("POST", PATH, lambda _s, _m: Answer(200, "ok"), schema=MESSAGE)])
