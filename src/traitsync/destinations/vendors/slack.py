"""Slack incoming webhook: a text message when a profile enters or exits an audience (and,
optionally, when a computed trait changes).

The webhook URL is the credential (``https://hooks.slack.com/services/T.../B.../...``); it is a
secret and is redacted from the debugger. ``endpoint`` replaces it (tests, a proxy). Each
message is ``POST {"text": ..., "channel"?, "username"?, "icon_emoji"?}``, one change per
request, at Slack's rate of about one message per second per webhook.

Which changes speak: an ``Audience Entered`` / ``Audience Exited`` track, or an identify whose
audience boolean is true / false; computed traits only with ``send_traits: true``. The text
comes from templates with ``{user}`` (email, else userId, else anonymousId), ``{audience}``,
``{trait}``, ``{value}`` and ``{event}``.

Answers: 200 ``ok``; 429 waits for ``Retry-After``; 403/404/410 (``invalid_token``,
``no_service``, ``channel_not_found``, ``channel_is_archived``) mean the webhook is gone, which
pauses the destination; 400 (``invalid_payload``, ``no_text``) drops the message.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
    status_outcome,
)
from traitsync.destinations.vendors._engage import EMAIL, as_dict, invalid, is_track, text

_FIELDS = frozenset({"user", "audience", "trait", "value", "event"})


def _check_template(value: str) -> str:
    for _, name, _, _ in string.Formatter().parse(value):
        if name is not None and name not in _FIELDS:
            raise ValueError(f"unknown placeholder {{{name}}}; use {', '.join(sorted(_FIELDS))}")
    return value


class SlackSettings(DestinationSettings):
    url: SecretStr | None = Field(default=None, description="The incoming webhook URL (a secret).")
    channel: str | None = Field(default=None, description="Channel override (legacy webhooks only).")
    username: str | None = Field(default=None, description="Sender name override (legacy webhooks only).")
    icon_emoji: str | None = Field(default=None, description="Sender icon, e.g. :tada: (legacy webhooks only).")
    entered_template: str = "{user} entered audience *{audience}*"
    exited_template: str = "{user} exited audience *{audience}*"
    trait_template: str = "{user}: *{trait}* is now {value}"
    send_traits: bool = Field(default=False, description="Also post computed trait changes.")

    @field_validator("entered_template", "exited_template", "trait_template")
    @classmethod
    def _templates(cls, value: str) -> str:
        return _check_template(value)

    @field_validator("url")
    @classmethod
    def _slack_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            host = raw.split("/")[2] if raw.count("/") >= 3 else ""
            if not raw.startswith("https://") or not (host == "slack.com" or host.endswith(".slack.com")):
                raise ValueError("url must be a Slack incoming webhook URL (https://hooks.slack.com/services/...)")
        return value

    @model_validator(mode="after")
    def _target(self) -> SlackSettings:
        if self.url is None and self.endpoint is None:
            raise ValueError("url is required (the incoming webhook URL)")
        return self

    @property
    def target(self) -> str:
        if self.endpoint:
            return self.endpoint
        assert self.url is not None
        return self.url.get_secret_value()


DEFAULT_MAPPINGS: dict[str, Any] = {
    "user": {"@first": [EMAIL["@first"][0], EMAIL["@first"][1], "$.userId", "$.anonymousId"]},
    "computation_key": "$.context.personas.computation_key",
    "computation_class": "$.context.personas.computation_class",
    "traits": "$.traits",
    "properties": "$.properties",
    "event": "$.event",
}


def _value(item: Item, key: str) -> Any:
    source: Mapping[str, Any] = as_dict(item.fields.get("properties" if is_track(item) else "traits"))
    return source.get(key)


def message_text(item: Item, settings: SlackSettings) -> str | None:
    """The text for this change, or None when it is not one Slack is told about."""
    key = text(item.fields.get("computation_key")) or ""
    user = text(item.fields.get("user")) or "someone"
    event = text(item.fields.get("event")) or ""
    value = _value(item, key)
    audience = item.fields.get("computation_class") == "audience"
    if audience:
        entered = event == "Audience Entered" if is_track(item) and event.startswith("Audience ") else value is True
        template = settings.entered_template if entered else settings.exited_template
    elif settings.send_traits:
        template = settings.trait_template
    else:
        return None
    shown = "true" if value is True else "false" if value is False else str(value)
    return template.format(user=user, audience=key, trait=key, value=shown, event=event)


def build(items: Sequence[Item], settings: SlackSettings) -> list[Request]:
    requests = []
    for i, item in enumerate(items):
        words = message_text(item, settings)
        if words is None:
            raise invalid("Slack is only told about audience entries and exits (and traits with send_traits)",
                          code="NOT_AN_AUDIENCE_CHANGE")
        body: dict[str, Any] = {"text": words}
        for name in ("channel", "username", "icon_emoji"):
            if getattr(settings, name):
                body[name] = getattr(settings, name)
        requests.append(Request("POST", settings.target, dumps(body), (i,),
                                {"Content-Type": "application/json", "User-Agent": "traitsync (slack)"},
                                authorize=False))
    return requests


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    outcome = status_outcome(response)
    reason = response.body[:60].decode("utf-8", "replace").strip() if response.body else ""
    if response.error is None and response.status in (403, 404, 410):
        return [Outcome.auth(reason or str(response.status))] * len(items)
    if outcome.kind == "drop" and reason:
        return [Outcome.drop(reason)] * len(items)
    return [outcome] * len(items)


DESTINATION: Destination[SlackSettings] = Destination(
    name="Slack",
    slug="slack",
    settings_model=SlackSettings,
    build=build,
    classify=classify,
    default_rate=1.0,
    max_batch=1,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    description="A Slack message (incoming webhook) when a profile enters or exits an audience.",
)
