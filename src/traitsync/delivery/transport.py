"""Executing an adapter's ``Request``: httpx for HTTP(S), a tiny file sink for ``file://``.

Network failures become ``TransportError`` with the stable codes Segment's Delivery Overview
shows (``ETIMEDOUT``, ``ECONNRESET``, ``ECONNREFUSED``, ``ENOTFOUND``); they are retried like a
5xx. A URL we cannot even attempt (unsupported scheme, malformed) is a settings problem, not a
transient one, so it is reported as ``INVALID_SETTINGS`` and pauses the destination.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import httpx

from traitsync.destinations.base import Request, Response
from traitsync.errors import Retryable


class TransportError(Retryable):
    """The request got no HTTP answer; ``code`` says why (and ``settings`` if retrying is pointless)."""

    def __init__(self, message: str, *, code: str, settings: bool = False) -> None:
        super().__init__(message, code=code)
        self.settings = settings


class Transport(Protocol):
    def send(self, request: Request, timeout: float) -> Response: ...

    def close(self) -> None: ...


class FileSink:
    """Append request bodies to local files; one lock per process keeps lines whole."""

    _lock = threading.Lock()

    def send(self, request: Request, timeout: float) -> Response:
        parsed = urlparse(request.url)
        path = Path(unquote(parsed.path))
        try:
            with self._lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as fh:
                    fh.write(request.body)
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise TransportError(f"cannot append to {path}: {exc}", code="EIO") from exc
        return Response(200)

    def close(self) -> None:
        return None


def _network_code(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "ETIMEDOUT"
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectError):
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
            return "ENOTFOUND"
        if "reset" in text:
            return "ECONNRESET"
        return "ECONNREFUSED"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "ECONNRESET"
    return "NETWORK_ERROR"


class HttpTransport:
    """httpx with explicit timeouts; ``file://`` URLs go to the file sink."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(follow_redirects=False)
        self._files = FileSink()

    def send(self, request: Request, timeout: float) -> Response:
        if request.url.startswith("file://"):
            return self._files.send(request, timeout)
        try:
            resp = self._client.request(
                request.method, request.url, content=request.body, headers=dict(request.headers),
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise TransportError(f"{request.url}: {exc}", code="INVALID_SETTINGS", settings=True) from exc
        except httpx.TransportError as exc:
            raise TransportError(f"{request.method} {request.url}: {exc!r}", code=_network_code(exc)) from exc
        return Response(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content)

    def close(self) -> None:
        self._client.close()
