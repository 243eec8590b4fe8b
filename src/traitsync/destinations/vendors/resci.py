"""Resci (ReSci, Retention Science): Segment-format identify and track messages, one per request.

ReSci publishes no public server API for Segment-style events; its Segment destination receives
the Segment messages themselves. This adapter does the same: each change is POSTed unchanged
as the Segment JSON (``{"type": "identify", "userId", "traits": {...}, "context": {...}}`` or
``{"type": "track", "event": "Audience Entered", "properties": {...}}``) to the ingestion URL
ReSci gives the account (setting ``endpoint``; there is no default, since ReSci does not
document a public one). Auth is HTTP Basic with the ReSci API key as user name and an empty
password, the convention of Segment's own Tracking API; ``auth_header: bearer`` sends
``Authorization: Bearer <key>`` instead for accounts whose endpoint expects that.

Engage caps Resci at 200 requests/second. ReSci answers 2xx on success; 401/403 pause the
destination; 429 and 5xx retry; other 4xx drop the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from traitsync.destinations.base import Destination, DestinationSettings, Item, Request, dumps
from traitsync.destinations.vendors._engage import basic


class ResciSettings(DestinationSettings):
    api_key: SecretStr = Field(description="The ReSci API key (API settings > API Password in ReSci).")
    auth_header: Literal["basic", "bearer"] = Field(default="basic", description="How the key is sent.")

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        return value

    @model_validator(mode="after")
    def _needs_endpoint(self) -> ResciSettings:
        if not self.endpoint:
            raise ValueError("endpoint is required: the ingestion URL ReSci gave your account")
        if not self.endpoint.startswith(("https://", "http://")):
            raise ValueError("endpoint must be an http(s) URL")
        return self


def _authorization(settings: ResciSettings) -> str:
    key = settings.api_key.get_secret_value()
    return f"Bearer {key}" if settings.auth_header == "bearer" else basic(key, "")


def build(items: Sequence[Item], settings: ResciSettings) -> list[Request]:
    assert settings.endpoint is not None  # the validator guarantees it
    headers = {"Content-Type": "application/json", "User-Agent": "traitsync (resci)",
               "Authorization": _authorization(settings)}
    return [Request("POST", settings.endpoint, dumps(dict(item.fields) if item.fields else item.message), (i,),
                    headers, authorize=False) for i, item in enumerate(items)]


DESTINATION: Destination[ResciSettings] = Destination(
    name="Resci",
    slug="resci",
    settings_model=ResciSettings,
    build=build,
    default_rate=200.0,
    max_batch=1,
    event_types=frozenset({"identify", "track"}),
    custom_fields=True,
    description="ReSci: Segment-format identify/track messages posted to the account's ingestion URL.",
)
