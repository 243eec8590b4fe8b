"""DoubleClick Floodlight (Campaign Manager 360): a server-to-server Floodlight activity per change.

Floodlight has no JSON API for conversions: an app or server reports one by a ``GET`` of the
activity URL Campaign Manager shows on the activity's Code tab,
``https://ad.doubleclick.net/ddm/activity/src=<advertiser id>;cat=<activity tag>;type=<group tag>;
dc_rdid=<IDFA or AAID>;ord=<unique>;u1=<custom variable>...``, with the device's ``User-Agent``.
Parameters are ``;``-separated inside the path (not a query string).

Each Engage track (``Audience Entered``, ``Audience Exited``, ``Trait Computed``, or a renamed
event) is looked up in ``conversionEvents`` (as Segment's and RudderStack's Floodlight
destinations do); a listed event fires its activity (its own ``cat``/``type``, else the
defaults), an unlisted one is dropped (``NO_MATCHING_CONVERSION_EVENT``). Counter tags use the
message id as ``ord`` (so a retry is not counted twice); sales tags send ``qty``/``cost`` and the
order id from the mapped properties. Custom Floodlight variables (``u1``, ``u2``...) take
message properties. The device advertising id (``context.device.advertisingId``: connect the
audience with mobile ids) is required; ``context.device.adTrackingEnabled: false`` sends
``dc_lat=1``; ``context.userAgent`` is sent as the ``User-Agent`` (Floodlight uses it to tell
apps from browsers; without one a generic app user agent is sent).

Answers: Floodlight answers a pixel (200) or a redirect (3xx): both mean recorded. 429 and 5xx
retry; other 4xx drop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Item,
    Outcome,
    Request,
    Response,
    status_outcome,
)
from traitsync.destinations.vendors._engage import as_dict, invalid, text

DEFAULT_HOST = "https://ad.doubleclick.net"
APP_USER_AGENT = "traitsync/1.0 (server-to-server; Floodlight)"
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,8}$")
_VARIABLE = re.compile(r"^u[1-9]\d{0,2}$")


class ConversionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    eventName: str = Field(min_length=1, description="The track event name, e.g. Audience Entered.")
    floodlightActivityTag: str | None = Field(default=None, description="cat= for this event.")
    floodlightGroupTag: str | None = Field(default=None, description="type= for this event.")
    salesTag: bool = Field(default=False, description="A sales activity (qty, cost, ord = order id).")
    customVariables: dict[str, str] = Field(default_factory=dict, description="u1.. -> message property key.")

    @field_validator("floodlightActivityTag", "floodlightGroupTag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _TAG.match(value.strip()):
            raise ValueError(f"{value!r} is not a Floodlight tag string (up to 8 of A-Z, a-z, 0-9, _, -)")
        return value.strip() if value else value

    @field_validator("customVariables")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _VARIABLE.match(name):
                raise ValueError(f"custom variable {name!r} must be u1, u2, ... u100")
        return value


class FloodlightSettings(DestinationSettings):
    advertiserId: str = Field(pattern=r"^\d+$", description="The Floodlight configuration's advertiser id (src=).")
    activityTag: str | None = Field(default=None, description="Default activity tag string (cat=).")
    groupTag: str | None = Field(default=None, description="Default activity group tag string (type=).")
    conversionEvents: list[ConversionEvent] = Field(min_length=1, description="Which events fire which activity.")
    tag_for_child_directed_treatment: bool | None = None
    tfua: bool | None = Field(default=None, description="Under the age of consent (GDPR Art. 8).")
    npa: bool | None = Field(default=None, description="Non-personalised ads: no remarketing from this event.")

    @field_validator("activityTag", "groupTag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _TAG.match(value.strip()):
            raise ValueError(f"{value!r} is not a Floodlight tag string (up to 8 of A-Z, a-z, 0-9, _, -)")
        return value.strip() if value else value

    def event(self, name: str) -> ConversionEvent | None:
        wanted = name.strip().lower()
        return next((e for e in self.conversionEvents if e.eventName.strip().lower() == wanted), None)


DEFAULT_MAPPINGS: dict[str, Any] = {
    "event": "$.event",
    "advertising_id": "$.context.device.advertisingId",
    "ad_tracking_enabled": "$.context.device.adTrackingEnabled",
    "user_agent": "$.context.userAgent",
    "properties": "$.properties",
    "order_id": {"@first": ["$.properties.orderId", "$.properties.order_id"]},
    "quantity": "$.properties.quantity",
    "revenue": "$.properties.revenue",
    "message_id": "$.messageId",
}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    # ; separates parameters and # ends the URL: percent-encode everything outside unreserved characters.
    return quote(str(value), safe="-_.~")


def activity_url(item: Item, settings: FloodlightSettings) -> str:
    name = text(item.fields.get("event"))
    conversion = settings.event(name) if name else None
    if conversion is None:
        raise invalid(f"event {name!r} is not in conversionEvents", code="NO_MATCHING_CONVERSION_EVENT")
    device = text(item.fields.get("advertising_id"))
    if device is None:
        raise invalid("Floodlight needs context.device.advertisingId (send mobile ids)",
                      code="MISSING_ADVERTISING_ID")
    cat = conversion.floodlightActivityTag or settings.activityTag
    group = conversion.floodlightGroupTag or settings.groupTag
    if not cat or not group:
        raise invalid(f"no activity/group tag for {name!r}", code="INVALID_SETTINGS")
    params: list[tuple[str, Any]] = [("src", settings.advertiserId), ("cat", cat), ("type", group),
                                     ("dc_rdid", device)]
    if conversion.salesTag:
        params += [("qty", item.fields.get("quantity") or 1), ("cost", item.fields.get("revenue")),
                   ("ord", item.fields.get("order_id") or item.fields.get("message_id"))]
    else:
        params.append(("ord", item.fields.get("message_id")))
    tracking = item.fields.get("ad_tracking_enabled")
    if isinstance(tracking, bool):
        params.append(("dc_lat", 0 if tracking else 1))
    for flag in ("tag_for_child_directed_treatment", "tfua", "npa"):
        if getattr(settings, flag) is not None:
            params.append((flag, 1 if getattr(settings, flag) else 0))
    props = as_dict(item.fields.get("properties"))
    for variable, key in sorted(conversion.customVariables.items(), key=lambda kv: int(kv[0][1:])):
        if props.get(key) is not None:
            params.append((variable, props[key]))
    path = ";".join(f"{k}={_value(v)}" for k, v in params if v is not None)
    return (settings.endpoint or DEFAULT_HOST).rstrip("/") + "/ddm/activity/" + path


def build(items: Sequence[Item], settings: FloodlightSettings) -> list[Request]:
    return [Request("GET", activity_url(item, settings), b"", (i,),
                    {"User-Agent": text(item.fields.get("user_agent")) or APP_USER_AGENT}, authorize=False)
            for i, item in enumerate(items)]


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    if response.error is None and 300 <= response.status < 400:
        return [Outcome.ok()] * len(items)  # Floodlight redirects after recording the activity
    return [status_outcome(response)] * len(items)


DESTINATION: Destination[FloodlightSettings] = Destination(
    name="DoubleClick Floodlight",
    slug="floodlight",
    settings_model=FloodlightSettings,
    build=build,
    classify=classify,
    default_rate=20.0,
    max_batch=1,
    event_types=frozenset({"track"}),
    default_mappings=DEFAULT_MAPPINGS,
    description="Campaign Manager Floodlight activities fired server-to-server for mapped track events.",
)
