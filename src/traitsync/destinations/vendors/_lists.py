"""The part every list adapter shares: dispatching list operations, and what a create answers.

A list operation is an ``audience_list`` message: ``create`` (make the vendor's list, named
after the audience, and answer its id), or ``add`` / ``remove`` of a batch of members to the
list named by ``context.personas.external_audience_id``. An adapter supplies two generators,
how to create and how to upload; ``list_exchange`` runs them one operation after the other,
refuses an upload without a list id (``LIST_GONE``: the next sync creates the list again) and
skips a batch in which no member is one the vendor can take.

Members a vendor rejects for good are reported by their *position* in the operation
(``rejected``), never by value: outcomes are stored and shown, and values are personal data.
Activation leaves those members' list state unchanged, so the next sync tries them again.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from traitsync.destinations.auth import Token
from traitsync.destinations.base import LIST_GONE, DestinationSettings, Exchange, Item, Outcome, Request, Response

S = TypeVar("S", bound=DestinationSettings)
Step = Generator[Request, Response, Outcome]
#: ``create(message, settings, token)``: the outcome of making the list (``created`` builds it).
Create = Callable[[Mapping[str, Any], S, Token | None], Step]
#: ``upload(message, settings, token, action, list_id)``: the outcome of one add/remove batch.
Upload = Callable[[Mapping[str, Any], S, Token | None, str, str], Step]


def audience_name(message: Mapping[str, Any], limit: int = 255) -> str:
    """The vendor list's name: the audience's display name, else its key."""
    audience = message.get("audience") or {}
    return str(audience.get("name") or audience.get("key") or "traitsync audience")[:limit]


def audience_key(message: Mapping[str, Any]) -> str:
    return str((message.get("audience") or {}).get("key", ""))


def list_id_of(message: Mapping[str, Any]) -> str | None:
    value = (message.get("context") or {}).get("personas", {}).get("external_audience_id")
    return str(value) if value else None


def created(outcome: Outcome, list_id: Any, vendor: str) -> Outcome:
    """A create's outcome: ok with the id activation stores, or a retry when the vendor said yes
    without an id (it may have made the list: a retry finds it by name where the vendor allows)."""
    if outcome.kind != "ok":
        return outcome
    if list_id is None or str(list_id) == "":
        return Outcome.retry(code=f"{vendor.upper()}_NO_LIST_ID", message=f"{vendor} answered the create without an id")
    return Outcome.ok({"external_id": str(list_id)})


def members_of(message: Mapping[str, Any], pick: Callable[[Mapping[str, Any]], Any]) -> list[tuple[int, Any]]:
    """``(position, value)`` of each member ``pick`` turns into something the vendor takes (``None``:
    left out, e.g. an identifier type the vendor cannot match), first occurrence of a value only."""
    out: list[tuple[int, Any]] = []
    seen: set[Any] = set()
    for position, member in enumerate(message.get("members") or []):
        value = pick(member) if isinstance(member, Mapping) else None
        if value is not None and value not in seen:
            seen.add(value)
            out.append((position, value))
    return out


def with_rejected(outcome: Outcome, positions: Iterable[int], codes: Iterable[str] = ()) -> Outcome:
    """An ok outcome that names the members the vendor refused (by position) and why."""
    rejected = sorted(set(positions))
    if outcome.kind != "ok" or not rejected:
        return outcome
    detail = {**(outcome.detail or {}), "rejected": rejected}
    reasons = sorted(set(codes))
    if reasons:
        detail["rejected_codes"] = reasons
    return Outcome("ok", detail=detail, message=outcome.message or f"{len(rejected)} members refused")


def list_exchange(items: Sequence[Item], settings: S, token: Token | None, *, vendor: str,
                  create: Create[S], upload: Upload[S]) -> Exchange:
    """Run each list operation in ``items`` in turn (see the module docstring)."""
    outcomes: list[Outcome] = []
    for item in items:
        message = item.message
        action = str(message.get("action"))
        if action == "create":
            outcomes.append((yield from create(message, settings, token)))
            continue
        list_id = list_id_of(message)
        if list_id is None:
            outcomes.append(Outcome.drop(LIST_GONE, f"no {vendor} list id for this list yet"))
            continue
        outcomes.append((yield from upload(message, settings, token, action, list_id)))
    return outcomes
