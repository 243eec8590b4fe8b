"""The one pure table that turns an HTTP status into what delivery does next.

Segment's action-destinations framework and RudderStack agree on the split (reference
destinations.md 0.1): 2xx succeeds; 408 (timeout), 423 (locked) and 429 (throttled) are
transient; every 5xx except 501 (Not Implemented, which never starts working) is transient;
401/403 mean the credentials are wrong, which retrying cannot fix but a settings change can,
so they pause the destination instead of dead-lettering each message; every other 4xx is the
message's own fault and goes to the dead letter. It lives with the adapters, which use it for
their answers; delivery reads it from here.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    RETRY = "retry"
    AUTH = "auth"
    DROP = "drop"


OK = Status.OK
RETRY = Status.RETRY
AUTH = Status.AUTH
DROP = Status.DROP

_RETRYABLE_4XX = frozenset({408, 423, 429})


def classify_status(code: int) -> Status:
    """Classify one HTTP status code (see the module docstring for the table)."""
    if 200 <= code < 300:
        return OK
    if code in (401, 403):
        return AUTH
    if code in _RETRYABLE_4XX:
        return RETRY
    if 500 <= code < 600:
        return DROP if code == 501 else RETRY
    if 400 <= code < 500:
        return DROP
    # 1xx/3xx reaching us means the vendor answered something we did not ask for (httpx does not
    # follow redirects for POST); >= 600 is not HTTP. Retrying lets an operator fix the URL.
    return RETRY
