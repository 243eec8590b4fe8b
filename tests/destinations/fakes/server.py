"""A local fake of a vendor API: real HTTP on 127.0.0.1 that validates and records each request.

A fake is a list of routes. Each route names a method and a path pattern, optionally a JSON
Schema the request body must satisfy (written from the vendor's documented request, or taken
from its OpenAPI document), and a handler that answers. A request no route matches, or whose
body fails its schema, is answered 400 with the reason and recorded in ``violations``, so a
test that ends with ``fake.violations == []`` has proved every request was well-formed.

Tests script failures with ``fake.script``: a queue of ``Answer`` objects consumed before the
handler (throttles, partial failures, expired tokens, hangs). ``Answer(delay=0.2)`` answers
after 200 ms, as real vendors do (benchmarks).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jsonschema


@dataclass
class Seen:
    """One request as the fake received it."""

    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain"
        return json.dumps(self.body).encode(), "application/json"


Handler = Callable[[Seen, re.Match[str]], Answer]


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    schema: dict[str, Any] | None = None
    form: bool = False  # the body is form-encoded: validate the parsed form (values as single strings)

    def match(self, method: str, path: str) -> re.Match[str] | None:
        if method != self.method:
            return None
        return re.fullmatch(self.pattern, path)


class FakeVendor:
    def __init__(self, routes: list[Route], *, delay: float = 0.0) -> None:
        self.routes = routes
        self.delay = delay
        self.requests: list[Seen] = []
        self.violations: list[str] = []
        self.script: list[Answer] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                seen = Seen(time.monotonic(), self.command, url.path, parse_qs(url.query),
                            {k: v for k, v in self.headers.items()}, body)
                answer = fake._answer(seen)
                if answer.hang:
                    fake.release.wait(30)
                    return
                if answer.delay or fake.delay:
                    time.sleep(answer.delay or fake.delay)
                data, ctype = answer.encoded()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.headers.get("Content-Type", ctype))
                for key, value in answer.headers.items():
                    if key != "Content-Type":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, seen: Seen) -> Answer:
        for route in self.routes:
            match = route.match(seen.method, seen.path)
            if match is None:
                continue
            problem = self._validate(route, seen)
            with self.lock:
                self.requests.append(seen)
                if problem is not None:
                    self.violations.append(f"{seen.method} {seen.path}: {problem}")
                    return Answer(400, {"error": problem})
                if self.script:
                    return self.script.pop(0)
            return route.handler(seen, match)
        with self.lock:
            self.requests.append(seen)
            self.violations.append(f"{seen.method} {seen.path}: no such route")
        return Answer(404, {"error": "no such route"})

    @staticmethod
    def _validate(route: Route, seen: Seen) -> str | None:
        if route.schema is None:
            return None
        try:
            if route.form:
                data: Any = {k: v[0] if len(v) == 1 else v for k, v in seen.form().items()}
            else:
                data = json.loads(seen.body) if seen.body else None
        except ValueError as exc:
            return f"body is not JSON: {exc}"
        try:
            jsonschema.validate(data, route.schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            return f"schema: {exc.message}" + (f" at {where}" if where else "")
        return None

    def start(self) -> FakeVendor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def on(self, method: str, path_prefix: str) -> list[Seen]:
        """Recorded requests with this method whose path starts with ``path_prefix``."""
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]


def ok(body: Any = None, status: int = 200) -> Handler:
    return lambda _seen, _match: Answer(status, body)
