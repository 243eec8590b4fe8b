"""Generic webhook: POST each Segment message (or a JSON array of them) to a URL.

Modelled on Segment's "Webhooks (Actions)" and "Webhook Audiences" (reference destinations.md
14). Event mode posts the Segment JSON unchanged; list mode posts the ``audience_list``
operations (create, add members, remove members) that activation batches on the list
schedule. With a shared secret, ``X-Signature`` carries the hex HMAC of the exact body bytes;
we default to SHA-256 (Segment signs with SHA-1, which ``signature_algorithm: sha1`` keeps for
receivers written against Segment). A receiver has no standard partial-failure format, so the
request's status applies to every message it carried.

Mappings: with none configured the body is the Segment message itself; a destination's
``mappings:`` turns each event into the object they describe instead (Webhooks (Actions)'
``data`` field), e.g. ``{user: $.userId, audience: $.context.personas.computation_key}``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from traitsync.destinations.base import (
    LIST_MESSAGE_TYPE,
    Destination,
    DestinationSettings,
    Item,
    Outcome,
    Request,
    Response,
    chunks,
    dumps,
    status_outcome,
)

SIGNATURE_HEADER = "X-Signature"
USER_AGENT = "traitsync (webhook)"


class WebhookSettings(DestinationSettings):
    url: str | None = Field(default=None, description="Where messages are sent; `endpoint` overrides it.")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (ASCII).")
    shared_secret: SecretStr | None = Field(default=None, description="Signs each body into X-Signature.")
    signature_algorithm: Literal["sha256", "sha1"] = "sha256"
    batch_size: int = Field(default=0, ge=0, le=1000,
                            description="0: one message per request; N > 0: JSON arrays of up to N.")
    create_audience_url: str | None = Field(default=None, description="List mode: where `create` goes "
                                            "(default: the main URL).")

    def secrets(self) -> list[str]:
        """Header values count as secrets too: they are where a webhook's credentials go
        (``Authorization: Bearer ...``, ``X-Api-Key``), and vendors quote them back in errors."""
        out = super().secrets()
        for value in self.headers.values():
            out.append(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha():
                out.append(credential.strip())
        return out

    @model_validator(mode="after")
    def _needs_a_target(self) -> WebhookSettings:
        if not (self.endpoint or self.url):
            raise ValueError("a webhook needs `url` (or `endpoint`)")
        for name, value in self.headers.items():
            if not (name.isascii() and value.isascii()):
                raise ValueError(f"header {name!r} must be ASCII")
        return self

    @property
    def target(self) -> str:
        target = self.endpoint or self.url
        assert target is not None  # the validator guarantees it
        return target


def sign(body: bytes, secret: str, algorithm: str = "sha256") -> str:
    """The ``X-Signature`` value a receiver recomputes to check the body came from us."""
    return hmac.new(secret.encode("utf-8"), body, getattr(hashlib, algorithm)).hexdigest()


def _request(settings: WebhookSettings, url: str, body: bytes, indices: tuple[int, ...]) -> Request:
    headers = {**settings.headers, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    if settings.shared_secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, settings.shared_secret.get_secret_value(),
                                         settings.signature_algorithm)
    return Request(method=settings.method, url=url, body=body, indices=indices, headers=headers, authorize=False)


def _body(item: Item) -> object:
    return dict(item.fields) if item.fields else item.message


def build(items: Sequence[Item], settings: WebhookSettings) -> list[Request]:
    """One request per list operation; events one each, or as arrays when batching is on."""
    requests: list[Request] = []
    events: list[int] = []
    for i, item in enumerate(items):
        message = item.message
        if message.get("type") == LIST_MESSAGE_TYPE:
            url = settings.target
            if message.get("action") == "create" and settings.create_audience_url:
                url = settings.create_audience_url
            requests.append(_request(settings, url, dumps(message), (i,)))
        else:
            events.append(i)
    if settings.batch_size == 0:
        requests.extend(_request(settings, settings.target, dumps(_body(items[i])), (i,)) for i in events)
    else:
        for group in chunks(len(events), settings.batch_size):
            indices = tuple(events[j] for j in group)
            body = dumps([_body(items[i]) for i in indices])
            requests.append(_request(settings, settings.target, body, indices))
    return requests


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    """The status decides; a successful ``create`` keeps the receiver's ``externalId``."""
    outcome = status_outcome(response)
    if outcome.kind == "ok" and len(items) == 1 and items[0].message.get("action") == "create":
        data = response.json()
        if isinstance(data, dict) and data.get("externalId") is not None:
            outcome = Outcome.ok({"external_id": str(data["externalId"])})
    return [outcome] * len(items)


DESTINATION: Destination[WebhookSettings] = Destination(
    name="Webhook",
    slug="webhook",
    settings_model=WebhookSettings,
    build=build,
    classify=classify,
    default_rate=50.0,
    max_batch=1000,
    batch_repeats_profiles=True,
    modes=frozenset({"event", "list"}),
    min_list_interval_s=60.0,
    custom_fields=True,
    description="POST each message (or your mapped fields) to a URL, signed with HMAC.",
)
