"""Oracle Eloqua: contacts found by email, then updated or created with audience and trait fields.

Auth: HTTP Basic with ``<company>\\<username>`` and the password. Eloqua instances live on
different pods, so the API host is discovered with ``GET https://login.eloqua.com/id`` (its
answer's ``urls.base``); that discovery is modelled as the destination's token: cached, renewed
hourly, and redone once when a call answers 401 (Oracle's advice: the instance may have moved).

Custom contact fields are addressed by numeric id in ``fieldValues``. The adapter reads the
contact field list once per batch (``GET /api/REST/1.0/assets/contact/fields``) and matches each
audience or trait key to a field by its name or internal name (``vip_buyers`` or
``C_vip_buyers``); ``field_ids`` pins keys to ids instead, and skips that read when it covers
every key. Then, per message:

1. ``GET /api/REST/1.0/data/contacts?search=emailAddress='<email>'&depth=minimal``
2. ``PUT /api/REST/1.0/data/contact/<id> {type:"Contact", id, emailAddress, fieldValues:[{type:
   "FieldValue", id, value}]}`` when found, else ``POST /api/REST/1.0/data/contact {...}``.

Values are text (``true`` / ``false`` for audiences). 409 (a contact with that email appeared
since the search) and 429 / 5xx are retried; a 400 validation error drops the message.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from pydantic import Field, SecretStr

from traitsync.destinations.auth import Token, TokenAuth, TokenRejected
from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Exchange,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
    status_outcome,
)
from traitsync.destinations.vendors._computation import EMAIL_MAPPING, change_of, text

LOGIN = "https://login.eloqua.com"
REST = "/api/REST/1.0"
DISCOVERY_TTL_S = 3600.0
STANDARD = {"email": None, "first_name": "firstName", "last_name": "lastName", "firstName": "firstName",
            "lastName": "lastName", "title": "title", "city": "city", "country": "country",
            "phone": "businessPhone", "company": "accountName"}


class EloquaSettings(DestinationSettings):
    company: str = Field(min_length=1, pattern=r"^[^\\\s]+$", description="Your Eloqua company (site) name.")
    username: str = Field(min_length=1, description="An Eloqua user with API access.")
    password: SecretStr = Field(description="That user's password.")
    field_ids: dict[str, str] = Field(default_factory=dict, description="Audience / trait key -> contact field "
                                      "id, for keys whose field is not named after them.")

    def basic(self) -> str:
        pair = f"{self.company}\\{self.username}:{self.password.get_secret_value()}".encode()
        return base64.b64encode(pair).decode("ascii")

    def secrets(self) -> list[str]:
        return [*super().secrets(), self.basic()]


def discover(settings: EloquaSettings) -> Request:
    host = (settings.endpoint or LOGIN).rstrip("/")
    return Request("GET", f"{host}/id", headers={"Authorization": f"Basic {settings.basic()}",
                                                 "Accept": "application/json"}, authorize=False, purpose="token")


def parse_discovery(response: Response) -> Token:
    """The ``/id`` answer: the instance's base URL (the credential itself is applied per request)."""
    data = response.json()
    if response.error is not None or response.status >= 500 or response.status == 429:
        raise TokenRejected(f"Eloqua login unavailable ({response.error or response.status})",
                            code=response.error or str(response.status), retryable=True)
    base = ((data.get("urls") or {}).get("base")) if isinstance(data, dict) else None
    if not response.ok or not base:
        # /id answers 200 with the text "Not authenticated." for wrong credentials.
        raise TokenRejected(f"Eloqua refused the credentials ({response.status})",
                            code="NOT_AUTHENTICATED" if response.ok else str(response.status))
    site = str((data.get("site") or {}).get("id") or "")
    return Token(f"eloqua-site-{site}", time.time() + DISCOVERY_TTL_S, {"base": str(base).rstrip("/")})


def api_base(settings: EloquaSettings, token: Token | None) -> str:
    if settings.endpoint:
        return settings.endpoint.rstrip("/")
    return ((token.extra.get("base") if token is not None else None) or "https://secure.eloqua.com").rstrip("/")


def _headers(settings: EloquaSettings) -> dict[str, str]:
    return {"Authorization": f"Basic {settings.basic()}", "Accept": "application/json",
            "Content-Type": "application/json"}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attributes_of(item: Item) -> dict[str, Any]:
    change = change_of(item.message)
    return {change.key: change.value} if change.is_track and change.key else dict(change.attributes)


def answer_outcome(response: Response) -> Outcome:
    base = status_outcome(response)
    if base.kind == "ok" or base.kind == "auth":
        return base
    if response.status == 409:
        return Outcome.retry(code="409", message="a contact with this email already exists; searching again")
    data = response.json()
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    if base.kind == "drop" and first.get("type"):
        return Outcome.drop(str(first["type"]), f"{first.get('property') or ''} {first.get('value') or ''}".strip()
                            or None)
    return base


def _field_index(response: Response) -> dict[str, str]:
    data = response.json()
    elements = data.get("elements") if isinstance(data, dict) else None
    index: dict[str, str] = {}
    for field in elements if isinstance(elements, list) else []:
        if not isinstance(field, dict) or field.get("id") is None:
            continue
        for label in (field.get("name"), field.get("internalName")):
            if isinstance(label, str) and label:
                index.setdefault(label.lower(), str(field["id"]))
    return index


def exchange(items: Sequence[Item], settings: EloquaSettings, token: Token | None) -> Exchange:
    base = api_base(settings, token)
    headers = _headers(settings)
    outcomes: list[Outcome | None] = [None] * len(items)
    keys = {str(k) for item in items for k in attributes_of(item) if str(k) not in STANDARD}
    index: dict[str, str] = {}
    if keys - set(settings.field_ids):
        listed = yield Request("GET", f"{base}{REST}/assets/contact/fields?depth=partial&count=1000",
                               headers=headers, purpose="lookup")
        if not listed.ok:
            return [answer_outcome(listed)] * len(items)
        index = _field_index(listed)

    def field_id(key: str) -> str | None:
        return settings.field_ids.get(key) or index.get(key.lower()) or index.get(f"c_{key}".lower())

    for i, item in enumerate(items):
        email = text(item.fields.get("email"))
        if email is None:
            outcomes[i] = Outcome.drop("MISSING_EMAIL", "Eloqua contacts are matched by email; the message has none")
            continue
        standard: dict[str, str] = {}
        values: list[dict[str, str]] = []
        missing: list[str] = []
        for key, value in attributes_of(item).items():
            key = str(key)
            if key in STANDARD:
                name = STANDARD[key]
                if name:
                    standard[name] = as_text(value)
                continue
            fid = field_id(key)
            if fid is None:
                missing.append(key)
            else:
                values.append({"type": "FieldValue", "id": fid, "value": as_text(value)})
        if missing:
            outcomes[i] = Outcome.drop("UNKNOWN_FIELD", f"no Eloqua contact field for {', '.join(sorted(missing))}; "
                                       "create it or set field_ids")
            continue
        search = quote(f"emailAddress='{email}'", safe="=")
        found = yield Request("GET", f"{base}{REST}/data/contacts?search={search}&depth=minimal&count=2",
                              indices=(i,), headers=headers, purpose="lookup")
        if not found.ok:
            outcomes[i] = answer_outcome(found)
            continue
        data = found.json()
        elements = data.get("elements") if isinstance(data, dict) else None
        hits = [e for e in elements if isinstance(e, dict) and e.get("id")] if isinstance(elements, list) else []
        contact: dict[str, Any] = {"type": "Contact", "emailAddress": email, **standard, "fieldValues": values}
        if hits:
            contact_id = str(hits[0]["id"])
            contact = {"type": "Contact", "id": contact_id, **{k: v for k, v in contact.items() if k != "type"}}
            answer = yield Request("PUT", f"{base}{REST}/data/contact/{contact_id}", dumps(contact), (i,),
                                   headers=headers)
        else:
            answer = yield Request("POST", f"{base}{REST}/data/contact", dumps(contact), (i,), headers=headers)
        outcome = answer_outcome(answer)
        body = answer.json()
        if outcome.kind == "ok" and isinstance(body, dict) and body.get("id"):
            outcome = Outcome.ok({"contact_id": str(body["id"])})
        outcomes[i] = outcome
    return [o if o is not None else Outcome.unsent() for o in outcomes]


def check(settings: EloquaSettings, token: Token | None) -> Request:
    return Request("GET", f"{api_base(settings, token)}{REST}/system/user/current", headers=_headers(settings),
                   purpose="check")


DESTINATION: Destination[EloquaSettings] = Destination(
    name="Eloqua",
    slug="eloqua",
    settings_model=EloquaSettings,
    exchange=exchange,
    auth=TokenAuth(fetch=discover, parse=parse_discovery, apply=lambda request, _token: request),
    default_rate=5.0,
    max_batch=50,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"email": EMAIL_MAPPING},
    check=check,
    description="Update or create Oracle Eloqua contacts (found by email) with audience and trait fields.",
)
