"""Iterable Lists: an audience becomes an Iterable static list.

The first sync creates the list (``POST /api/lists {name}``, named after the audience) and keeps
its ``listId``. Adds ``POST /api/lists/subscribe {listId, subscribers: [...]}`` and removes
``POST /api/lists/unsubscribe {listId, subscribers, channelUnsubscribe: false}`` (leaving the
audience never unsubscribes the user from email), 1,000 subscribers a request (Iterable's cap).

Subscribers are ``{email}`` (trimmed, lowercased) or ``{userId, preferUserId: true}`` (sent
exactly; ids with surrounding spaces are refused, as Iterable treats them as other ids).
**Iterable identifies users by plain email or user id**: emails go in plain text to Iterable;
never in logs or the debugger (members show there as SHA-256, and failure details are this
adapter's words, not Iterable's answers, which list the refused emails).

The answer counts successes and failures and lists the refused identifiers (``invalidEmails``,
``failedUpdates.*``): those do not fail the others (counted in the outcome's detail); users
forgotten under GDPR or not found on unsubscribe count as done. 401 ``BadApiKey`` pauses the
destination, 429 and 5xx are retried, an unknown list (400 naming ``listId``, or 404) makes the
next sync create it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, SecretStr

from traitsync.destinations.auth import Token
from traitsync.destinations.base import (
    LIST_GONE,
    Destination,
    DestinationSettings,
    Exchange,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
    parse_retry_after,
    status_outcome,
)
from traitsync.destinations.pii import InvalidIdentifier, normalize_email

HOSTS = {"US": "https://api.iterable.com", "EU": "https://api.eu.iterable.com"}
MAX_SUBSCRIBERS = 1_000
#: ``failedUpdates`` keys that mean "nothing to do" rather than a failure.
_HARMLESS = frozenset({"forgottenEmails", "forgottenUserIds", "notFoundEmails", "notFoundUserIds"})


class IterableListsSettings(DestinationSettings):
    apiKey: SecretStr = Field(description="A server-side Iterable API key.")
    dataCenterLocation: Literal["US", "EU"] = Field(default="US", description="Where the project lives.")

    @property
    def host(self) -> str:
        return (self.endpoint or HOSTS[self.dataCenterLocation]).rstrip("/")


def subscriber(member: dict[str, Any]) -> dict[str, Any] | None:
    kind, value = str(member.get("type", "")), str(member.get("value", ""))
    if kind == "email":
        try:
            return {"email": normalize_email(value)}
        except InvalidIdentifier:
            return None
    if kind == "user_id" and value and value == value.strip():
        return {"userId": value, "preferUserId": True}
    return None


def _headers(settings: IterableListsSettings) -> dict[str, str]:
    return {"Content-Type": "application/json", "Api-Key": settings.apiKey.get_secret_value()}


def classify_answer(response: Response) -> Outcome:
    """By status and Iterable's ``code``; the message is ours (Iterable's quotes identifiers)."""
    if response.error is not None or response.ok:
        return status_outcome(response)
    data = response.json()
    code = str(data.get("code")) if isinstance(data, dict) and data.get("code") else str(response.status)
    params = str(data.get("params") or "") + str(data.get("msg") or "") if isinstance(data, dict) else ""
    if response.status == 404 or (response.status == 400 and "listId" in params and code == "BadParams"):
        return Outcome.drop(LIST_GONE, "Iterable has no such list")
    if response.status == 429 or response.status >= 500:
        return Outcome.retry(parse_retry_after(response.header("retry-after")), code, f"Iterable answered {code}")
    base = status_outcome(response)
    return Outcome(base.kind, base.retry_after, code, message=f"Iterable answered {code}")


def _refused(response: Response) -> int:
    data = response.json()
    if not isinstance(data, dict):
        return 0
    refused = len(data.get("invalidEmails") or []) + len(data.get("invalidUserIds") or [])
    failed = data.get("failedUpdates")
    if isinstance(failed, dict):
        refused += sum(len(v) for k, v in failed.items() if k not in _HARMLESS and isinstance(v, list))
    return refused


def exchange(items: Sequence[Item], settings: IterableListsSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    for item in items:
        message = item.message
        action = message.get("action")
        if action == "create":
            audience = message.get("audience", {})
            answer = yield Request("POST", f"{settings.host}/api/lists",
                                   dumps({"name": str(audience.get("name") or audience.get("key")),
                                          "description": f"traitsync audience {audience.get('key')}"}),
                                   headers=_headers(settings), purpose="create")
            outcome = classify_answer(answer)
            if outcome.code == LIST_GONE:
                outcome = Outcome.drop("404", "Iterable answered 404 to the list create")
            data = answer.json() if outcome.kind == "ok" else None
            if isinstance(data, dict) and data.get("listId") is not None:
                outcome = Outcome.ok({"external_id": str(data["listId"])})
            elif outcome.kind == "ok":
                outcome = Outcome.retry(code="ITERABLE_NO_LIST_ID", message="create answered without a listId")
            outcomes.append(outcome)
            continue
        list_id = message.get("context", {}).get("personas", {}).get("external_audience_id")
        if not list_id or not str(list_id).isdigit():
            outcomes.append(Outcome.drop(LIST_GONE, "no Iterable list id for this list yet"))
            continue
        subscribers = list({json_key(s): s for s in (subscriber(m) for m in message.get("members", []))
                            if s is not None}.values())
        result, refused = Outcome.ok(), 0
        for start in range(0, len(subscribers), MAX_SUBSCRIBERS):
            body: dict[str, Any] = {"listId": int(list_id), "subscribers": subscribers[start:start + MAX_SUBSCRIBERS]}
            if action == "remove":
                body["channelUnsubscribe"] = False
            path = "subscribe" if action == "add" else "unsubscribe"
            answer = yield Request("POST", f"{settings.host}/api/lists/{path}", dumps(body),
                                   headers=_headers(settings), purpose=str(action))
            result = classify_answer(answer)
            if result.kind != "ok":
                break
            refused += _refused(answer)
        if result.kind == "ok" and refused:
            result = Outcome("ok", detail={"refused_members": refused},
                             message=f"Iterable refused {refused} subscribers; the others went through")
        outcomes.append(result)
    return outcomes


def json_key(subscriber: dict[str, Any]) -> str:
    return f"e:{subscriber['email']}" if "email" in subscriber else f"u:{subscriber['userId']}"


def check(settings: IterableListsSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.host}/api/lists", headers=_headers(settings), purpose="check")


DESTINATION: Destination[IterableListsSettings] = Destination(
    name="Iterable Lists",
    slug="iterable_lists",
    settings_model=IterableListsSettings,
    exchange=exchange,
    check=check,
    default_rate=10.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_SUBSCRIBERS,
    timeout_s=30.0,
    description="Static lists; subscribers by (plain) email or user id, as Iterable requires; never channel "
                "unsubscribes.",
)
