"""Write-key authentication, as Segment accepts it (segment-spec 1.8)."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from traitsync.config.models import SourceConfig


def write_key_from_header(authorization: str | None) -> str | None:
    """The write key of ``Basic base64("key:")``; the colon is optional, as Segment allows."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key = decoded.split(":", 1)[0]
    return key or None


class SourceDirectory:
    """Maps write keys to sources with a constant-time comparison per candidate."""

    def __init__(self, sources: list[SourceConfig]) -> None:
        self._by_key = {s.write_key.get_secret_value(): s for s in sources}
        self.by_id = {s.id: s for s in sources}
        # Authorization headers already matched to a source: a request looks its source up more
        # than once (read limit, size limits, auth), and a client sends the same header each time.
        # Only known sources are kept, so the cache is bounded by the config, not by strangers.
        self._by_header: dict[str, SourceConfig] = {}

    def lookup(self, write_key: str | None) -> SourceConfig | None:
        if not write_key:
            return None
        source = self._by_key.get(write_key)
        if source is None:
            return None
        # dict lookup already matched; compare_digest keeps the final check constant-time
        if hmac.compare_digest(source.write_key.get_secret_value(), write_key):
            return source
        return None

    def resolve(self, authorization: str | None, body: Any) -> SourceConfig | None:
        if authorization:
            cached = self._by_header.get(authorization)
            if cached is not None:
                return cached
        key = write_key_from_header(authorization)
        if key is not None:
            source = self.lookup(key)
            if source is not None and authorization and len(self._by_header) < 4 * len(self.by_id) + 16:
                self._by_header[authorization] = source
            return source
        if isinstance(body, dict):
            body_key = body.get("writeKey")
            key = body_key if isinstance(body_key, str) else None
        return self.lookup(key)
