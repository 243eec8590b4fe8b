"""Keep secrets out of everything delivery stores or logs: attempt details, request logs, errors.

Two nets: every secret value we know (the settings' ``SecretStr`` fields and the current
tokens) is replaced wherever it appears, and query parameters whose names say they are
secret (``client_secret``, ``api_key``, ``access_token``...) are blanked whatever their value,
because a vendor may echo a credential we never held (Marketo's identity URL carries the
client secret in the query string). Email addresses are masked too: vendors quote the address
they refused in their error bodies, and those become attempt details in the debugger.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:[\w.-]*(?:secret|token|password|passwd|api[_-]?key|apikey|access[_-]?key|signature|auth)"
    r"[\w.-]*)=)[^&#\s]*")


class Redactor:
    """Replace known secret values and secret-looking query parameters."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = {s for s in secrets if s and len(s) >= 4}

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        text = _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, text)
        return _EMAIL.sub("<email>", text)
