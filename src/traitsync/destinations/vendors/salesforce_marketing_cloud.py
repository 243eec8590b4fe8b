"""Salesforce Marketing Cloud: data extension rows or contact attributes, and journey entry events.

Auth: ``POST https://<subdomain>.auth.marketingcloudapis.com/v2/token`` with a JSON
client-credentials body (``account_id`` selects a business unit); the answer's
``rest_instance_url`` is the REST host. Tokens last about 20 minutes; a 401 refreshes once.

- identify: with ``contact_attribute_set``, ``POST /contacts/v1/contacts {contactKey,
  attributeSets:[{name, items:[{values:[{name, value}]}]}]}`` per message; otherwise the traits are
  upserted as a row of the data extension ``data_extension_key``: ``POST
  /hub/v1/dataevents/key:<key>/rowset [{keys:{<primary key>: <contact key>}, values:{...}}]``
  (up to 50 rows / 1 MB per request).
- track: with ``event_definition_key``, ``POST /interaction/v1/events {ContactKey,
  EventDefinitionKey, Data:{Event, <key>: value, ...}}`` (journey entry); otherwise the track
  writes ``{<key>: value}`` like an identify.

A rowset stops at its first bad row without saying which one it was (earlier rows are stored,
later ones rejected), so a failed multi-row rowset is replayed row by row in the same exchange:
upserts are idempotent, and each message gets its own verdict. ``400`` with ``errorcode 10006``
("Unable to save rows") and no ``additionalErrors`` is transient and retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from pydantic import Field, ValidationInfo, field_validator

from traitsync.destinations.auth import Token
from traitsync.destinations.base import Destination, Exchange, Item, Outcome, Request, Response, dumps
from traitsync.destinations.vendors._computation import change_of, scalar, text
from traitsync.destinations.vendors._sfmc import SFMC_AUTH, SfmcAuthSettings, error_outcome, rest_base

MAX_ROWS = 50
MAX_BODY = 1_000_000


class SfmcSettings(SfmcAuthSettings):
    data_extension_key: str | None = Field(default=None, description="External key of the data extension "
                                           "identify messages (and tracks without an event) upsert rows into.")
    primary_key: str = Field(default="ContactKey", min_length=1, description="The data extension's primary-key "
                             "field, filled with the contact key.")
    contact_attribute_set: str | None = Field(default=None, validate_default=True, description="Write identify "
                                              "traits to this contact attribute set instead of a data extension.")
    event_definition_key: str | None = Field(default=None, description="Journey Builder API event definition "
                                             "key: tracks are fired as entry events.")

    @field_validator("contact_attribute_set", mode="after")
    @classmethod
    def _somewhere_to_write(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model validator) so the error never echoes the other settings.
        if not (value or info.data.get("data_extension_key")):
            raise ValueError("set data_extension_key (rows) or contact_attribute_set (contact attributes)")
        return value


def _values(item: Item, settings: SfmcSettings) -> dict[str, Any]:
    change = change_of(item.message)
    attributes = {change.key: change.value} if change.is_track and change.key else change.attributes
    return {str(k): scalar(v) for k, v in attributes.items() if k != settings.primary_key}


def _rowset(settings: SfmcSettings, base: str, rows: list[tuple[int, dict[str, Any]]]) -> Request:
    url = f"{base}/hub/v1/dataevents/key:{quote(settings.data_extension_key or '', safe='')}/rowset"
    return Request("POST", url, dumps([row for _, row in rows]), tuple(i for i, _ in rows),
                   headers={"Content-Type": "application/json"})


def _row_groups(rows: list[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    groups: list[list[tuple[int, dict[str, Any]]]] = []
    size = 0
    for row in rows:
        length = len(dumps(row[1])) + 1
        if not groups or len(groups[-1]) >= MAX_ROWS or size + length > MAX_BODY:
            groups.append([])
            size = 0
        groups[-1].append(row)
        size += length
    return groups


def exchange(items: Sequence[Item], settings: SfmcSettings, token: Token | None) -> Exchange:
    base = rest_base(settings, token)
    outcomes: list[Outcome | None] = [None] * len(items)
    rows: list[tuple[int, dict[str, Any]]] = []
    for i, item in enumerate(items):
        key = text(item.fields.get("contact_key"))
        if key is None:
            outcomes[i] = Outcome.drop("MISSING_CONTACT_KEY", "no contact key (userId) on the message")
            continue
        change = change_of(item.message)
        if change.is_track and settings.event_definition_key:
            data: dict[str, Any] = {"Event": change.event}
            data.update({str(k): scalar(v) for k, v in change.attributes.items()})
            email = text(item.fields.get("email"))
            if email:
                data.setdefault("email", email)
            body: dict[str, Any] = {"ContactKey": key, "EventDefinitionKey": settings.event_definition_key,
                                    "Data": data}
            answer = yield Request("POST", f"{base}/interaction/v1/events", dumps(body), (i,),
                                   headers={"Content-Type": "application/json"})
            outcomes[i] = error_outcome(answer)
        elif settings.contact_attribute_set and not settings.data_extension_key:
            values = [{"name": k, "value": v} for k, v in _values(item, settings).items()]
            contact: dict[str, Any] = {"contactKey": key, "attributeSets": [{"name": settings.contact_attribute_set,
                                                          "items": [{"values": values}]}]}
            answer = yield Request("POST", f"{base}/contacts/v1/contacts", dumps(contact), (i,),
                                   headers={"Content-Type": "application/json"})
            outcomes[i] = _contact_outcome(answer)
        else:
            rows.append((i, {"keys": {settings.primary_key: key}, "values": _values(item, settings)}))
    for group in _row_groups(rows):
        answer = yield _rowset(settings, base, group)
        outcome = error_outcome(answer)
        if outcome.kind != "drop" or len(group) == 1:
            for i, _ in group:
                outcomes[i] = outcome
            continue
        # Which row was bad is not said: replay them one by one (idempotent upserts).
        for row in group:
            single = yield _rowset(settings, base, [row])
            outcomes[row[0]] = error_outcome(single)
    return [o if o is not None else Outcome.unsent() for o in outcomes]


def _contact_outcome(response: Response) -> Outcome:
    outcome = error_outcome(response)
    data = response.json()
    if outcome.kind != "ok" or not isinstance(data, dict):
        return outcome
    if data.get("hasErrors") or str(data.get("operationStatus", "OK")).upper() not in ("OK", ""):
        messages = data.get("resultMessages") or [{}]
        first = messages[0] if isinstance(messages[0], dict) else {}
        return Outcome.drop(str(first.get("resultCode") or "CONTACT_FAILED"), first.get("message"))
    return outcome


def check(settings: SfmcSettings, token: Token | None) -> Request:
    return Request("GET", f"{rest_base(settings, token)}/platform/v1/endpoints", purpose="check")


DESTINATION: Destination[SfmcSettings] = Destination(
    name="Salesforce Marketing Cloud",
    slug="salesforce_marketing_cloud",
    settings_model=SfmcSettings,
    exchange=exchange,
    auth=SFMC_AUTH,
    default_rate=20.0,
    max_batch=MAX_ROWS,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"contact_key": {"@first": ["$.userId"]},
                      "email": {"@first": ["$.traits.email", "$.context.traits.email", "$.properties.email"]}},
    check=check,
    description="Upsert data extension rows (or contact attributes) and fire Journey Builder entry events.",
)
