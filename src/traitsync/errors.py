"""The error tree every stage raises from.

Retry logic reads the *type* of an error (its ``Retryable`` or ``Terminal`` marker), never the
message text, so a new error only has to pick its marker to be handled correctly everywhere.
"""

from __future__ import annotations


class TraitsyncError(Exception):
    """Root of every error traitsync raises on purpose; ``code`` is stable and machine-readable."""

    code: str = "traitsync_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class Retryable(TraitsyncError):
    """Marker: the same operation may succeed later (storage busy, vendor 5xx, rate limited)."""


class Terminal(TraitsyncError):
    """Marker: retrying the same operation cannot succeed (bad payload, bad config)."""


class ConfigError(Terminal):
    """A configuration file is wrong; names the file, line and key path so the user can fix it."""

    code = "config_error"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file:
            where = file + (f":{line}" if line else "")
        if key:
            where = f"{where} [{key}]" if where else f"[{key}]"
        super().__init__(f"{where}: {message}" if where else message)
        self.detail = message


class StorageUnavailable(Retryable):
    """The store cannot commit right now (disk full, database down); the caller answers 503."""

    code = "storage_unavailable"


class RateLimited(Retryable):
    """Too many requests; ``retry_after`` seconds is how long to wait."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidCredentials(Terminal):
    """A credential was refused; a destination with this error is paused, not retried."""

    code = "invalid_credentials"


class InvalidPayload(Terminal):
    """A message cannot be sent as it is; it goes to the dead letter with this code."""

    code = "invalid_payload"


class UnsupportedInDialect(Terminal):
    """A computation cannot be compiled to the chosen SQL dialect; raised at compile time."""

    code = "unsupported_in_dialect"
