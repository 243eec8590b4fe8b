"""Per-destination token cache: fetch once, share across threads, refresh before expiry.

One ``TokenCache`` per destination and process. ``get`` returns the cached token while it has
more than the adapter's leeway left, else fetches a new one; concurrent callers wait for the
one fetch in progress instead of each asking the vendor (single flight). ``invalidate(token)``
drops the token a vendor just called expired, unless another thread already replaced it, so
a burst of 401s causes one refresh, not one per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from traitsync.destinations.auth import Token, TokenAuth, TokenRejected
from traitsync.destinations.base import Request, Response

Send = Callable[[Request, str], Response]


class TokenCache:
    def __init__(self, auth: TokenAuth, settings: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.auth = auth
        self.settings = settings
        self.clock = clock
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, send: Send) -> Token:
        """The current token; fetches through ``send(request, purpose)`` when none is fresh."""
        with self._lock:
            token = self._token
            if token is not None and not token.expires_within(self.auth.leeway_s, self.clock()):
                return token
            response = send(self.auth.fetch(self.settings), "token")
            self.fetches += 1
            token = self.auth.parse(response)  # raises TokenRejected
            self._token = token
            return token

    def invalidate(self, token: Token) -> None:
        with self._lock:
            if self._token is token:
                self._token = None

    @property
    def current(self) -> Token | None:
        return self._token


__all__ = ["TokenCache", "TokenRejected"]
