"""Marketo (REST API): leads upserted by email, tracks as custom activities.

Auth is an OAuth client-credentials grant at ``/identity/oauth/token`` (query string, as Marketo
documents it); requests carry ``Authorization: Bearer``. Marketo answers HTTP 200 for almost
everything and puts the outcome in the body: ``success:false`` with ``errors[{code}]`` fails
the whole request (601/602: the token is invalid or expired, delivery refreshes it and replays
the request once; 606 rate limit, 607 daily quota, 615 concurrency limit, 604/608/611/1029:
retry later; any other code: drop), and ``success:true`` carries one ``result`` per input record
(``seq`` is its position) whose ``status:"skipped"`` with ``reasons`` fails only that record.

Identify: ``POST /rest/v1/leads.json {action:"createOrUpdate", lookupField:"email",
input:[{email, <traits>}]}`` (<= 300 records). Track: when ``activity_type_id`` is set, the
leads are upserted by email first (that answer gives their ids), then one custom activity per
event is posted to ``/rest/v1/activities/external.json``; without it a track updates the lead
field ``<key>`` with the audience membership or trait value, as an identify would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import Field, SecretStr, field_validator

from traitsync.destinations.auth import Token, TokenAuth, client_credentials_request, oauth_token
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
from traitsync.destinations.vendors._computation import (
    EMAIL_MAPPING,
    change_of,
    iso_timestamp,
    scalar,
    size_chunks,
    text,
)

MAX_RECORDS = 300
#: Marketo answers 413 above 1 MB per request: batches are split below that.
MAX_BODY = 1_000_000
#: Whole-request errors: the token is no longer good (refresh and replay).
EXPIRED = frozenset({"601", "602"})
#: Whole-request errors worth retrying, with the wait Marketo's limits imply (seconds).
RETRYABLE: dict[str, float | None] = {
    "606": 20.0,    # 100 calls per 20 s sliding window
    "607": 3600.0,  # daily quota: try again in an hour, the quota resets at midnight (instance time)
    "615": 5.0,     # more than 10 concurrent calls
    "604": None, "608": None, "611": None, "1029": 60.0,
}


class MarketoSettings(DestinationSettings):
    client_id: str = Field(min_length=1, description="Client ID of the LaunchPoint API service.")
    client_secret: SecretStr = Field(description="Client secret of the LaunchPoint API service.")
    api_endpoint: str = Field(description="REST API endpoint, https://<munchkin-id>.mktorest.com "
                              "(Admin > Web Services); `endpoint` overrides it.")
    activity_type_id: int | None = Field(default=None, ge=1, description="Custom activity type that tracks "
                                         "become (attributes `event` and `value`); unset: tracks update lead fields.")

    @field_validator("api_endpoint")
    @classmethod
    def _an_https_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        for suffix in ("/rest", "/identity"):
            if value.endswith(suffix):
                value = value[: -len(suffix)]
        if not value.startswith(("https://", "http://")):
            raise ValueError("api_endpoint must be a URL such as https://123-ABC-456.mktorest.com")
        return value

    @property
    def base(self) -> str:
        return (self.endpoint or self.api_endpoint).rstrip("/")

    def secrets(self) -> list[str]:
        """The secret travels in the token URL's query string: redact its URL-encoded forms too."""
        out = super().secrets()
        for secret in list(out):
            out.extend({quote(secret, safe=""), quote_plus(secret)} - {secret})
        return out


def _envelope_error(response: Response) -> tuple[str, str] | None:
    """``(code, message)`` of a ``success:false`` answer, else None."""
    data = response.json()
    if not isinstance(data, dict) or data.get("success") is not False:
        return None
    errors = data.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    return str(first.get("code") or "MARKETO_ERROR"), str(first.get("message") or "")


def token_expired(response: Response) -> bool:
    if response.status == 401:
        return True
    error = _envelope_error(response) if response.ok else None
    return error is not None and error[0] in EXPIRED


def request_outcome(response: Response) -> Outcome:
    """What one answer means for every record it carried, before per-record results."""
    base = status_outcome(response)
    if base.kind != "ok":
        if response.status == 413:  # over 1 MB: never fits
            return Outcome.drop("413", "request larger than Marketo's 1 MB")
        return base
    data = response.json()
    if not isinstance(data, dict):
        return Outcome.retry(code="MARKETO_BAD_ANSWER", message="answer is not a Marketo envelope")
    error = _envelope_error(response)
    if error is None:
        return Outcome.ok()
    code, message = error
    if code in EXPIRED:
        return Outcome.auth(code, message)
    if code in RETRYABLE:
        return Outcome.retry(RETRYABLE[code], code, message)
    return Outcome.drop(code, message)


def record_outcomes(response: Response, count: int) -> list[Outcome]:
    """One outcome per input record of a ``success:true`` answer (``seq``, else position)."""
    data = response.json() or {}
    results = data.get("result") if isinstance(data, dict) else None
    outcomes: list[Outcome | None] = [None] * count
    if not isinstance(results, list):
        results = []
    for position, entry in enumerate(results):
        if not isinstance(entry, dict):
            continue
        seq = entry.get("seq", position)
        if not isinstance(seq, int) or not 0 <= seq < count:
            continue
        if entry.get("status") == "skipped":
            reasons = entry.get("reasons") or [{}]
            reason = reasons[0] if isinstance(reasons[0], dict) else {}
            code = str(reason.get("code") or "SKIPPED")
            outcomes[seq] = (Outcome.retry(RETRYABLE[code], code, reason.get("message"))
                             if code in RETRYABLE else Outcome.drop(code, reason.get("message")))
        else:
            lead_id = entry.get("id")
            outcomes[seq] = Outcome.ok({"lead_id": lead_id} if lead_id is not None else None)
    missing = Outcome.retry(code="MARKETO_NO_RESULT", message="the answer has no result for this record")
    return [o if o is not None else missing for o in outcomes]


def _lead(item: Item, email: str) -> dict[str, Any]:
    change = change_of(item.message)
    attributes = dict(change.attributes)
    if change.is_track and change.key:
        attributes = {change.key: change.value}
    lead = {"email": email}
    lead.update({k: scalar(v) for k, v in attributes.items() if k != "email"})
    return lead


def _upsert(settings: MarketoSettings, leads: list[dict[str, Any]], indices: tuple[int, ...],
            purpose: str = "send") -> Request:
    body = {"action": "createOrUpdate", "lookupField": "email", "input": leads}
    return Request("POST", f"{settings.base}/rest/v1/leads.json", dumps(body), indices,
                   headers={"Content-Type": "application/json"}, purpose=purpose)


def _activity(item: Item, lead_id: Any, activity_type_id: int) -> dict[str, Any]:
    change = change_of(item.message)
    attributes = [{"name": "event", "value": change.event}, {"name": "value", "value": scalar(change.value)}]
    attributes += [{"name": k, "value": scalar(v)} for k, v in change.attributes.items()
                   if k not in (change.key, "email")]
    return {"leadId": lead_id, "activityDate": iso_timestamp(item.message), "activityTypeId": activity_type_id,
            "primaryAttributeValue": change.key or change.event, "attributes": attributes}


def exchange(items: Sequence[Item], settings: MarketoSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome | None] = [None] * len(items)
    emails: dict[int, str] = {}
    for i, item in enumerate(items):
        email = text(item.fields.get("email"))
        if email is None:
            outcomes[i] = Outcome.drop("MISSING_EMAIL", "Marketo leads are matched by email; the message has none")
        else:
            emails[i] = email
    leads = [i for i in emails if items[i].type != "track" or settings.activity_type_id is None]
    activities = [i for i in emails if i not in leads]
    bodies = {i: _lead(items[i], emails[i]) for i in leads}
    for group in size_chunks([len(dumps(bodies[i])) for i in leads], MAX_RECORDS, MAX_BODY):
        indices = tuple(leads[j] for j in group)
        response = yield _upsert(settings, [bodies[i] for i in indices], indices)
        whole = request_outcome(response)
        got = record_outcomes(response, len(indices)) if whole.kind == "ok" else [whole] * len(indices)
        for i, outcome in zip(indices, got, strict=True):
            outcomes[i] = outcome
    for group in size_chunks([len(dumps(_activity(items[i], 0, 1))) + 16 for i in activities], MAX_RECORDS,
                             MAX_BODY):
        indices = tuple(activities[j] for j in group)
        # The activity needs the lead id: upserting by email returns it (and creates a missing lead).
        found = yield _upsert(settings, [{"email": emails[i]} for i in indices], indices, purpose="lookup")
        whole = request_outcome(found)
        got = record_outcomes(found, len(indices)) if whole.kind == "ok" else [whole] * len(indices)
        ready: list[tuple[int, Any]] = []
        for i, outcome in zip(indices, got, strict=True):
            lead_id = (outcome.detail or {}).get("lead_id")
            if outcome.kind == "ok" and lead_id is None:
                outcome = Outcome.retry(code="MARKETO_NO_LEAD_ID", message="upsert answer carried no lead id")
            if outcome.kind != "ok":
                outcomes[i] = outcome
            else:
                ready.append((i, lead_id))
        if not ready:
            continue
        assert settings.activity_type_id is not None
        body = {"input": [_activity(items[i], lead_id, settings.activity_type_id) for i, lead_id in ready]}
        sent = tuple(i for i, _ in ready)
        response = yield Request("POST", f"{settings.base}/rest/v1/activities/external.json", dumps(body), sent,
                                 headers={"Content-Type": "application/json"})
        whole = request_outcome(response)
        got = record_outcomes(response, len(sent)) if whole.kind == "ok" else [whole] * len(sent)
        for i, outcome in zip(sent, got, strict=True):
            outcomes[i] = Outcome.ok() if outcome.kind == "ok" else outcome
    return [o if o is not None else Outcome.unsent() for o in outcomes]


def _token_request(settings: MarketoSettings) -> Request:
    return client_credentials_request(f"{settings.base}/identity/oauth/token", settings.client_id,
                                      settings.client_secret.get_secret_value(), in_query=True)


def check(settings: MarketoSettings, token: Token | None) -> Request:
    return Request("GET", f"{settings.base}/rest/v1/leads/describe.json", purpose="check")


def throttle(response: Response) -> float | None:
    """Marketo's rate and concurrency limits come as 606/615 inside a 200: slow every process down."""
    error = _envelope_error(response)
    if error is not None and error[0] in ("606", "615"):
        return RETRYABLE[error[0]]
    return None


DESTINATION: Destination[MarketoSettings] = Destination(
    name="Marketo",
    slug="marketo",
    settings_model=MarketoSettings,
    exchange=exchange,
    auth=TokenAuth(fetch=_token_request, parse=oauth_token, expired=token_expired),
    default_rate=5.0,
    max_batch=MAX_RECORDS,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"email": EMAIL_MAPPING},
    check=check,
    description="Upsert Marketo leads by email with computed traits and audience fields; tracks as custom "
                "activities.",
    throttle=throttle,
)
