"""Oracle Responsys (lists): each audience becomes a profile extension table (PET) of the profile list.

Responsys has no list-membership object besides profile lists themselves, so, as Segment's
"send audience as PET" does, an audience is a PET of ``profileListName`` named after the audience
key, with one column (the key, uppercased) saying ``true`` for members:

- first sync: ``POST /rest/api/v1.3/lists/<profile list>/listExtensions`` creates the PET (in
  ``folderName``); a PET of that name that exists already is used as it is;
- add, 200 rows a request (Responsys' merge cap): the members are merged into the profile list
  first (``.../lists/<list>/members``, inserting unknown ones when ``insertOnNoMatch``, never
  overwriting existing records), then into the PET with the column ``true``;
- remove: merged into the PET with the column ``false`` (a row whose record is gone simply fails
  to match).

Members go by email (``EMAIL_ADDRESS_``) or by ``user_id`` (``CUSTOMER_ID_``), each matched on its
own column. **Responsys matches records by plain email**: emails go in plain text in request
bodies to Responsys; never in logs or the debugger (members show there as SHA-256, and failure
details are this adapter's words, not Responsys' answers, which can quote the record).

Login, token and merge bodies are Responsys' (``vendors/_responsys.py``). A row answered
``MERGEFAILED`` does not fail the others (counted in the outcome's detail); a PET that no longer
exists (404 on its merge) makes the next sync create it again; 429 and the API limit codes are
retried.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from pydantic import Field, model_validator

from traitsync.destinations.auth import Token
from traitsync.destinations.base import (
    LIST_GONE,
    Destination,
    Exchange,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
)
from traitsync.destinations.pii import InvalidIdentifier, normalize_email
from traitsync.destinations.vendors._responsys import (
    API,
    AUTH,
    MAX_RECORDS,
    ResponsysSettings,
    api_host,
    error_outcome,
    merge_request,
    record_outcomes,
)
from traitsync.destinations.vendors._responsys import check as responsys_check

Step = Generator[Request, Response, Outcome]
#: Identifier type -> (profile list column, Responsys match column).
COLUMNS = {"email": ("EMAIL_ADDRESS_", "EMAIL_ADDRESS"), "user_id": ("CUSTOMER_ID_", "CUSTOMER_ID")}


class ResponsysListsSettings(ResponsysSettings):
    folderName: str = Field(default="traitsync", min_length=1, description="Folder the audience PETs are created in.")

    @model_validator(mode="after")
    def _one_pet_per_audience(self) -> ResponsysListsSettings:
        if self.profileExtensionTable:
            raise ValueError("profileExtensionTable does not apply: each audience gets its own PET")
        return self


def pet_name(audience: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", str(audience.get("key") or "audience"))[:50]


def audience_column(audience: dict[str, Any]) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", str(audience.get("key") or "audience").upper())[:30]


def member_value(member: dict[str, Any]) -> tuple[str, str] | None:
    kind, value = str(member.get("type", "")), str(member.get("value", ""))
    if kind == "email":
        try:
            return kind, normalize_email(value)
        except InvalidIdentifier:
            return None
    if kind == "user_id" and value.strip():
        return kind, value.strip()
    return None


def _ours(outcome: Outcome) -> Outcome:
    """Responsys' ``detail`` can quote the record: keep only our words."""
    return replace(outcome, message=f"Responsys answered {outcome.code or outcome.kind}")


def _create(message: dict[str, Any], settings: ResponsysListsSettings, host: str) -> Step:
    audience = message.get("audience", {})
    pet = pet_name(audience)
    body = {"profileExtension": {"objectName": pet, "folderName": settings.folderName},
            "fields": [{"fieldName": audience_column(audience), "fieldType": "STR500"}]}
    answer = yield Request("POST", f"{host}{API}/lists/{quote(settings.profileListName, safe='')}/listExtensions",
                           dumps(body), headers={"Content-Type": "application/json"}, purpose="create")
    if answer.ok:
        return Outcome.ok({"external_id": pet})
    data = answer.json()
    code = str(data.get("errorCode", "")) if isinstance(data, dict) else ""
    if answer.status == 409 or "ALREADY_EXISTS" in code.upper():
        return Outcome.ok({"external_id": pet})  # made by an earlier attempt whose answer was lost, or by hand
    return _ours(error_outcome(answer))


def _upload(message: dict[str, Any], settings: ResponsysListsSettings, host: str, pet: str) -> Step:
    adding = message.get("action") == "add"
    column = audience_column(message.get("audience", {}))
    by_type: dict[str, dict[str, None]] = {}
    for found in (member_value(m) for m in message.get("members", [])):
        if found is not None:
            by_type.setdefault(found[0], {})[found[1]] = None
    failed = 0
    for kind, values in by_type.items():
        id_column, match = COLUMNS[kind]
        ordered = list(values)
        for start in range(0, len(ordered), MAX_RECORDS):
            chunk = ordered[start:start + MAX_RECORDS]
            if adding:  # the record must exist in the profile list before a PET row can point at it
                profile = settings.model_copy(update={"updateOnMatch": "NO_UPDATE", "matchColumnName1": match,
                                                      "matchColumnName2": None})
                answer = yield replace(merge_request(profile, host, (id_column,), [(0, [v]) for v in chunk],
                                                     asynchronous=False), purpose="merge profiles")
                if not answer.ok:
                    return _ours(error_outcome(answer))
            pet_settings = settings.model_copy(update={
                "profileExtensionTable": pet, "updateOnMatch": "REPLACE_ALL", "insertOnNoMatch": adding,
                "matchColumnName1": match, "matchColumnName2": None})
            rows = [(0, [v, "true" if adding else "false"]) for v in chunk]
            answer = yield replace(merge_request(pet_settings, host, (id_column, column), rows, asynchronous=False),
                                   purpose=str(message.get("action")))
            if answer.status == 404:
                return Outcome.drop(LIST_GONE, "Responsys has no such profile extension table")
            if not answer.ok:
                return _ours(error_outcome(answer))
            verdicts = record_outcomes(answer.json(), len(chunk))
            if any(v.kind == "retry" for v in verdicts):
                return Outcome.retry(code="RESPONSYS_BAD_ANSWER", message="merge answer has no record per row")
            failed += sum(1 for v in verdicts if v.kind != "ok")
    if failed:
        return Outcome("ok", detail={"failed_rows": failed}, message=f"Responsys refused {failed} rows")
    return Outcome.ok()


def exchange(items: Sequence[Item], settings: ResponsysListsSettings, token: Token | None) -> Exchange:
    host = api_host(settings, token)
    outcomes: list[Outcome] = []
    for item in items:
        message = item.message
        if message.get("action") == "create":
            outcomes.append((yield from _create(message, settings, host)))
            continue
        pet = message.get("context", {}).get("personas", {}).get("external_audience_id")
        if not pet:
            outcomes.append(Outcome.drop(LIST_GONE, "no Responsys PET for this list yet"))
            continue
        outcomes.append((yield from _upload(message, settings, host, str(pet))))
    return outcomes


def check(settings: ResponsysListsSettings, token: Token | None) -> Request:
    return responsys_check(settings, token)


DESTINATION: Destination[ResponsysListsSettings] = Destination(
    name="Responsys Lists",
    slug="responsys_lists",
    settings_model=ResponsysListsSettings,
    exchange=exchange,
    auth=AUTH,
    check=check,
    default_rate=3.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_RECORDS,
    description="One profile extension table per audience; members matched by (plain) email or customer id.",
)
