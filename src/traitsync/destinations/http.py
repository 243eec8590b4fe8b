"""The HTTP shapes adapters speak: a ``Request`` to send and the ``Response`` that came back.

Kept apart from the adapter interface so that credentials (``auth.py``) and adapters both
build on it without importing each other.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


def dumps(value: Any) -> bytes:
    """Compact, key-order-preserving JSON: the exact bytes we send (and sign)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Request:
    """One HTTP request (or, for ``file://`` URLs, one append to a local file).

    ``indices`` are the positions, in the adapter's input, of the items this request carries;
    ``classify`` later receives exactly those items, in that order. ``authorize`` asks delivery
    to apply the destination's current token (``TokenAuth.apply``) just before sending, so a
    request retried after a token refresh carries the new one. ``purpose`` labels it in the
    debugger (``send``, ``lookup``, ``token``...). ``delay`` asks delivery to wait that many
    seconds before sending: an exchange polling a vendor job backs off this way, since it does no
    I/O (and no sleeping) itself.
    """

    method: str
    url: str
    body: bytes = b""
    indices: tuple[int, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    authorize: bool = True
    purpose: str = "send"
    delay: float = 0.0

    def with_headers(self, **headers: str) -> Request:
        return replace(self, headers={**self.headers, **headers})


@dataclass(frozen=True)
class Response:
    """What came back: status, lower-cased headers and the raw body.

    A request that got no HTTP answer at all (timeout, reset, refused) is a ``Response`` with
    ``status`` 0 and ``error`` set to the network code (``ETIMEDOUT``...), so an exchange never
    has to catch anything; ``settings_error`` marks a URL that cannot be attempted at all.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    settings_error: bool = False

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is empty or not JSON (vendors do both)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def throttle_delay(response: Response, *, now: float | None = None) -> float | None:
    """How long a throttled vendor asked us to wait: ``Retry-After``, else the vendors' own headers
    (Braze ``X-Ratelimit-Retry-After`` in seconds; SendGrid and Intercom ``X-RateLimit-Reset``, an
    epoch time)."""
    wait = parse_retry_after(response.header("retry-after"), now=now)
    if wait is None:
        wait = parse_retry_after(response.header("x-ratelimit-retry-after"), now=now)
    reset = response.header("x-ratelimit-reset")
    if wait is None and reset is not None:
        try:
            value = float(reset.strip())
        except ValueError:
            return None
        current = time.time() if now is None else now
        wait = max(0.0, value - current) if value > 1e9 else max(0.0, value)
    return wait
