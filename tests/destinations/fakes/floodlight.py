"""A fake Floodlight activity server: ``GET /ddm/activity/<k=v;k=v...>`` checked against the
documented server-to-server request (src numeric, cat/type tag strings, dc_rdid, ord, u1..),
answering a 1x1 GIF like Floodlight."""

from __future__ import annotations

import re
import threading
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00" \
      b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
KNOWN = re.compile(r"^(src|cat|type|dc_rdid|ord|qty|cost|dc_lat|tag_for_child_directed_treatment|tfua|npa|"
                   r"u\d{1,3})$")


def parse(path: str) -> dict[str, str]:
    raw = path.split("/ddm/activity/", 1)[1]
    return {k: unquote(v) for k, _, v in (p.partition("=") for p in raw.split(";") if p)}


def floodlight_fake() -> FakeVendor:
    """The shared fake parses paths with ``urlparse``, which cuts a last segment's ``;params``;
    Floodlight's parameters are exactly that, so this fake's handler keeps the raw request path
    (per thread) and the recorded ``Seen.path`` is replaced by it."""
    fake = FakeVendor([])
    local = threading.local()
    base = fake.server.RequestHandlerClass

    class RawPath(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            local.raw = self.path
            base.do_GET(self)

    fake.server.server_close()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), RawPath)
    fake.server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{fake.server.server_address[1]}"
    fake._thread = threading.Thread(target=fake.server.serve_forever, daemon=True)

    def activity(seen: Seen, _m: re.Match[str]) -> Answer:
        seen.path = getattr(local, "raw", seen.path)
        params = parse(seen.path)
        problems = [k for k in params if not KNOWN.match(k)]
        problems += [f"missing {k}" for k in ("src", "cat", "type", "dc_rdid", "ord") if not params.get(k)]
        if params.get("src") and not params["src"].isdigit():
            problems.append("src not numeric")
        for tag in ("cat", "type"):
            if params.get(tag) and not re.fullmatch(r"[A-Za-z0-9_-]{1,8}", params[tag]):
                problems.append(f"bad {tag}")
        if not seen.header("User-Agent"):
            problems.append("no User-Agent")
        if problems:
            with fake.lock:
                fake.violations.append(f"{seen.path}: {problems}")
            return Answer(400, "bad request")
        return Answer(200, GIF, headers={"Content-Type": "image/gif"})

    fake.routes.append(Route("GET", r"/ddm/activity/.+", activity))
    return fake


def params_of(seen: Any) -> dict[str, str]:
    return parse(seen.path)
