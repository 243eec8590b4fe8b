"""What the Responsys and Responsys Batch adapters share: settings, login, merge bodies, verdicts.

Login: ``POST <baseUrl>/rest/api/v1.3/auth/token`` with the form ``user_name, password,
auth_type=password`` answers ``{authToken, issuedAt, endPoint}``; later calls go to ``endPoint``
with the raw token as ``Authorization`` (no scheme). Tokens live two hours.

A merge carries ``recordData:{fieldNames, records:[[...values]]}``: one column per identifier
(``EMAIL_ADDRESS_``, ``CUSTOMER_ID_``) and per audience / trait (its key uppercased), every value a
string. Messages whose columns differ go in different merges (a missing column would otherwise be
written as blank). The answer lists one record per input row: the RIID, or ``MERGEFAILED: <why>``
for a row that failed alone.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator

from traitsync.destinations.auth import Token, TokenAuth, TokenRejected, password_request
from traitsync.destinations.base import DestinationSettings, Item, Outcome, Request, Response, status_outcome
from traitsync.destinations.vendors._computation import EMAIL_MAPPING, change_of, text

API = "/rest/api/v1.3"
ASYNC_API = "/rest/asyncApi/v1.3"
MAX_RECORDS = 200
TOKEN_LIFETIME_S = 2 * 3600.0
RETRYABLE_CODES = {"API_LIMIT_EXCEEDED": 60.0, "REQUEST_LIMIT_EXCEEDED": 60.0, "TOO_MANY_REQUESTS": 60.0}
MAPPINGS: dict[str, Any] = {"email": EMAIL_MAPPING, "customer_id": {"@first": ["$.userId"]}}


class ResponsysSettings(DestinationSettings):
    username: str = Field(min_length=1, description="Responsys API user name.")
    userPassword: SecretStr = Field(description="That user's password.")
    baseUrl: str = Field(description="Your account's login endpoint, e.g. https://njp1q7u-api.responsys.ocs."
                         "oraclecloud.com (Account > Account Settings > API endpoints).")
    profileListName: str = Field(min_length=1, description="The profile list members are merged into.")
    profileExtensionTable: str | None = Field(default=None, description="Write audiences and traits to this "
                                              "profile extension table (PET) instead of list columns.")
    insertOnNoMatch: bool = Field(default=True, description="Create a member when no record matches.")
    matchColumnName1: Literal["EMAIL_ADDRESS", "CUSTOMER_ID", "RIID"] = Field(
        default="EMAIL_ADDRESS", description="First match column.")
    matchColumnName2: Literal["EMAIL_ADDRESS", "CUSTOMER_ID", "RIID"] | None = Field(
        default=None, description="Second match column (both must match).")
    updateOnMatch: Literal["REPLACE_ALL", "NO_UPDATE"] = Field(default="REPLACE_ALL",
                                                               description="What to do with a matching record.")
    defaultPermissionStatus: Literal["OPTIN", "OPTOUT"] = Field(default="OPTOUT", description="Email "
                                                                "permission of members created by a merge.")

    @field_validator("baseUrl")
    @classmethod
    def _https(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+$", value):
            raise ValueError("baseUrl must be the host URL only, e.g. https://njp1q7u-api.responsys.ocs.oraclecloud.com")
        return value

    @field_validator("matchColumnName1", "matchColumnName2", mode="before")
    @classmethod
    def _no_trailing_underscore(cls, value: Any) -> Any:
        return value.rstrip("_") if isinstance(value, str) else value


def login(settings: ResponsysSettings) -> Request:
    host = (settings.endpoint or settings.baseUrl).rstrip("/")
    return password_request(f"{host}{API}/auth/token", {"user_name": settings.username,
                                                         "password": settings.userPassword.get_secret_value(),
                                                         "auth_type": "password"})


def parse_login(response: Response) -> Token:
    data = response.json()
    if response.error is not None or response.status >= 500 or response.status == 429:
        raise TokenRejected(f"Responsys login unavailable ({response.error or response.status})",
                            code=response.error or str(response.status), retryable=True)
    if not response.ok or not isinstance(data, dict) or not data.get("authToken"):
        reason = data.get("errorCode") or data.get("title") if isinstance(data, dict) else None
        raise TokenRejected(f"Responsys login answered {response.status}: {reason or 'no authToken'}",
                            code=str(reason or response.status))
    issued = data.get("issuedAt")
    start = float(issued) / 1000.0 if isinstance(issued, int | float) and issued > 0 else time.time()
    extra = {"endPoint": str(data["endPoint"])} if data.get("endPoint") else {}
    return Token(str(data["authToken"]), start + TOKEN_LIFETIME_S, extra)


def raw_token(request: Request, token: Token) -> Request:
    return request.with_headers(Authorization=token.value)


AUTH = TokenAuth(fetch=login, parse=parse_login, apply=raw_token)


def api_host(settings: ResponsysSettings, token: Token | None) -> str:
    if settings.endpoint:
        return settings.endpoint.rstrip("/")
    return ((token.extra.get("endPoint") if token is not None else None) or settings.baseUrl).rstrip("/")


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if isinstance(value, dict | list) else str(
        value)


def column(key: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", key.upper())


def row_of(item: Item) -> dict[str, str] | None:
    """The columns and values one message merges, or None without an identifier."""
    email = text(item.fields.get("email"))
    customer = text(item.fields.get("customer_id"))
    if email is None and customer is None:
        return None
    row: dict[str, str] = {}
    if email:
        row["EMAIL_ADDRESS_"] = email
    if customer:
        row["CUSTOMER_ID_"] = customer
    change = change_of(item.message)
    attributes = {change.key: change.value} if change.is_track and change.key else change.attributes
    for key, value in attributes.items():
        if str(key).lower() == "email":
            continue
        row[column(str(key))] = as_text(value)
    return row


def merge_groups(items: Sequence[Item], settings: ResponsysSettings
                 ) -> tuple[dict[int, Outcome], list[tuple[tuple[str, ...], list[tuple[int, list[str]]]]]]:
    """Rows grouped by identical columns, in chunks of 200; items without an identifier dropped."""
    dropped: dict[int, Outcome] = {}
    groups: dict[tuple[str, ...], list[tuple[int, list[str]]]] = {}
    for i, item in enumerate(items):
        row = row_of(item)
        if row is None:
            dropped[i] = Outcome.drop("MISSING_IDENTIFIER", "Responsys needs an email or a userId (CUSTOMER_ID_)")
            continue
        match = (settings.matchColumnName1, settings.matchColumnName2)
        needed = {f"{m}_" for m in match if m and m != "RIID"}
        if not needed <= set(row):
            dropped[i] = Outcome.drop("MISSING_MATCH_COLUMN", f"the message has no {', '.join(sorted(needed))}")
            continue
        columns = tuple(row)
        groups.setdefault(columns, []).append((i, [row[c] for c in columns]))
    out = []
    for columns, rows in groups.items():
        for start in range(0, len(rows), MAX_RECORDS):
            out.append((columns, rows[start:start + MAX_RECORDS]))
    return dropped, out


def merge_request(settings: ResponsysSettings, host: str, columns: tuple[str, ...],
                  rows: list[tuple[int, list[str]]], *, asynchronous: bool) -> Request:
    base = f"{host}{ASYNC_API if asynchronous else API}/lists/{quote(settings.profileListName, safe='')}"
    record_data = {"fieldNames": list(columns), "records": [values for _, values in rows], "mapTemplateName": ""}
    body: dict[str, Any]
    if settings.profileExtensionTable:
        url = f"{base}/listExtensions/{quote(settings.profileExtensionTable, safe='')}/members"
        body = {"recordData": record_data, "insertOnNoMatch": settings.insertOnNoMatch,
                "updateOnMatch": settings.updateOnMatch, "matchColumnName1": settings.matchColumnName1,
                "matchColumnName2": settings.matchColumnName2 or ""}
    else:
        url = f"{base}/members"
        rule: dict[str, Any] = {"htmlValue": "H", "optinValue": "I", "textValue": "T",
                                "insertOnNoMatch": settings.insertOnNoMatch, "updateOnMatch": settings.updateOnMatch,
                                "matchColumnName1": f"{settings.matchColumnName1}_",
                                "matchOperator": "AND" if settings.matchColumnName2 else "NONE",
                                "optoutValue": "O", "rejectRecordIfChannelEmpty": "",
                                "defaultPermissionStatus": settings.defaultPermissionStatus}
        if settings.matchColumnName2:
            rule["matchColumnName2"] = f"{settings.matchColumnName2}_"
        body = {"recordData": record_data, "mergeRule": rule}
    return Request("POST", url, json.dumps(body, separators=(",", ":")).encode(), tuple(i for i, _ in rows),
                   headers={"Content-Type": "application/json", "Accept": "application/json"})


def error_outcome(response: Response) -> Outcome:
    """A whole-request failure: Responsys' ``errorCode`` when it has one."""
    base = status_outcome(response)
    data = response.json()
    code = str(data.get("errorCode")) if isinstance(data, dict) and data.get("errorCode") else None
    detail = data.get("detail") or data.get("title") if isinstance(data, dict) else None
    if code in RETRYABLE_CODES:
        return Outcome.retry(RETRYABLE_CODES[code], code, detail)
    if base.kind == "drop" and code:
        return Outcome.drop(code, detail)
    return base


def record_outcomes(body: Any, count: int) -> list[Outcome]:
    """Per-row verdicts of a merge answer: an RIID is delivered, ``MERGEFAILED: ...`` fails alone."""
    records = ((body or {}).get("recordData") or {}).get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or len(records) != count:
        return [Outcome.retry(code="RESPONSYS_BAD_ANSWER", message="merge answer has no record per row")] * count
    out: list[Outcome] = []
    for record in records:
        value = str(record[0]) if isinstance(record, list) and record else str(record)
        if value.upper().startswith("MERGEFAILED"):
            out.append(Outcome.drop("MERGEFAILED", value.split(":", 1)[-1].strip() or None))
        else:
            out.append(Outcome.ok({"riid": value}))
    return out


def check(settings: ResponsysSettings, token: Token | None) -> Request:
    return Request("GET", f"{api_host(settings, token)}/rest/api/ratelimit", purpose="check")
