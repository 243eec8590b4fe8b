"""Google OAuth and Google API errors, shared by Google Ads Customer Match and Display & Video 360.

Both authenticate with the refresh-token grant of the advertiser's own OAuth client
(``https://oauth2.googleapis.com/token``); delivery fetches, caches and refreshes the access
token (``TokenAuth``) and refreshes it after a 401. ``token_url`` overrides the token endpoint
(a local test server, a proxy).

Google answers errors as ``{"error": {"code", "message", "status", "details": [...]}}``; the
Google Ads API puts a ``GoogleAdsFailure`` with ``errors: [{errorCode: {<category>: <ENUM>},
message, location: {fieldPathElements: [{fieldName: "operations", index}]}}]`` in ``details``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from traitsync.destinations.auth import TokenAuth, oauth_token, refresh_token_request
from traitsync.destinations.base import (
    LIST_GONE,
    Outcome,
    Request,
    Response,
    parse_retry_after,
    status_outcome,
)

TOKEN_URL = "https://oauth2.googleapis.com/token"

#: Error codes that a retry fixes: another job touched the list at the same time, Google's own
#: transient failures, quota.
RETRY_CODES = frozenset({"CONCURRENT_MODIFICATION", "INTERNAL_ERROR", "TRANSIENT_ERROR", "RESOURCE_EXHAUSTED",
                         "RESOURCE_TEMPORARILY_EXHAUSTED", "DEADLINE_EXCEEDED"})
#: Error codes that say the list is no longer there: the next sync creates it again.
GONE_CODES = frozenset({"INVALID_USER_LIST_ID", "RESOURCE_NOT_FOUND", "USER_LIST_NOT_FOUND"})
#: Credentials or account access that only the user can fix.
AUTH_CODES = frozenset({"DEVELOPER_TOKEN_NOT_APPROVED", "DEVELOPER_TOKEN_PROHIBITED", "USER_PERMISSION_DENIED",
                        "CUSTOMER_NOT_ENABLED", "NOT_ADS_USER", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_EXPIRED",
                        "OAUTH_TOKEN_REVOKED", "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS"})


def token_request(settings: Any) -> Request:
    return refresh_token_request(settings.token_url or TOKEN_URL, settings.refresh_token.get_secret_value(),
                                 client_id=settings.client_id,
                                 client_secret=settings.client_secret.get_secret_value())


GOOGLE_AUTH = TokenAuth(fetch=token_request, parse=oauth_token)


def google_errors(data: Any) -> Iterator[tuple[str, str, int | None]]:
    """``(code, message, operation index)`` of each error in a Google Ads failure (full or partial).

    The code is the enum value of ``errorCode`` (``CONCURRENT_MODIFICATION``...); the index is
    the ``operations`` element the error points at, when it points at one."""
    if not isinstance(data, dict):
        return
    for detail in data.get("details") or []:
        if not isinstance(detail, dict):
            continue
        for error in detail.get("errors") or []:
            if not isinstance(error, dict):
                continue
            codes = error.get("errorCode") or {}
            code = next((str(v) for v in codes.values()), "UNKNOWN") if isinstance(codes, dict) else "UNKNOWN"
            index = None
            location = error.get("location") or {}
            for element in location.get("fieldPathElements") or [] if isinstance(location, dict) else []:
                if isinstance(element, dict) and element.get("fieldName") == "operations":
                    raw = element.get("index")
                    index = int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else None
                    break
            yield code, str(error.get("message", ""))[:200], index


def classify_google(response: Response) -> Outcome:
    """A whole-request answer: the Google Ads error enum first, then the HTTP status table."""
    if response.error is not None or response.ok:
        return status_outcome(response)
    data = response.json()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return status_outcome(response)
    found = list(google_errors(error))
    message = (found[0][1] if found else str(error.get("message", "")))[:200]
    codes = {code for code, _, _ in found}
    label = next(iter(sorted(codes)), None) or str(error.get("status") or response.status)
    if codes & RETRY_CODES or response.status == 429 or response.status >= 500:
        return Outcome.retry(parse_retry_after(response.header("retry-after")), label, message)
    if codes & GONE_CODES or (response.status == 404 and not codes):
        return Outcome.drop(LIST_GONE, message)
    if codes & AUTH_CODES or response.status in (401, 403):
        return Outcome.auth(label, message)
    return Outcome.drop(label, message)
