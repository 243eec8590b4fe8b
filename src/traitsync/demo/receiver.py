"""A local HTTP receiver for the demo: records every request a destination sends it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    body: Any


class DemoReceiver:
    """A threaded ``http.server`` on 127.0.0.1 that answers 200 and keeps what it got, in order."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()  # headers and body go out in two writes: without this, Nagle adds 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with receiver.lock:
                    receiver.received.append(Received(time.time(), self.path, body))
                answer = b'{"ok":true}'
                if isinstance(body, dict) and body.get("action") == "create":
                    answer = json.dumps({"externalId": f"list_{len(receiver.received)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="demo-receiver", daemon=True)

    def start(self) -> DemoReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def messages(self, path: str) -> list[dict[str, Any]]:
        """Every message posted to ``path`` (webhook arrays flattened)."""
        with self.lock:
            bodies = [r.body for r in self.received if r.path == path]
        out: list[dict[str, Any]] = []
        for body in bodies:
            out.extend(body if isinstance(body, list) else [body])
        return out

    def counts(self, path: str) -> Counter[str]:
        """Messages by event name (track) or type (identify, list actions)."""
        names: Counter[str] = Counter()
        for m in self.messages(path):
            if m.get("type") == "track":
                names[f"track: {m.get('event')}"] += 1
            elif m.get("type") == "audience_list":
                names[f"list {m.get('action')}"] += 1
            else:
                names[str(m.get("type"))] += 1
        return names
