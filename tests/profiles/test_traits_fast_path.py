"""The shortcuts ``/traits`` takes for speed answer exactly as the plain way did.

Stored trait JSON is spliced into the answer (not decoded and re-encoded), the canonical Basic
header is compared before any parsing, the cursor URL is read from the scope, and the endpoints
are called without FastAPI's dependency machinery.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.identity.conftest import Harness, sqlite_db
from tests.profiles.conftest import SECRET, SPACE, Server

TRAITS = {"s": "Zoë ✓ \"quoted\" \\ / \n", "empty": "", "i": -12, "big": 2 ** 53 + 1, "f": 0.1, "e": 1e-7,
          "t": True, "f0": False, "obj": {"nested": [1, {"deep": None}], "b": "x"}, "arr": [], "gone": "soon"}


def profile(tmp_path: Path, user_id: str = "u1") -> Harness:
    h = Harness(sqlite_db(tmp_path))
    h.send({"type": "identify", "userId": user_id, "traits": TRAITS, "timestamp": "2024-01-02T00:00:00.000Z"})
    h.send({"type": "identify", "userId": user_id, "traits": {"gone": None}, "timestamp": "2024-01-03T00:00:00.000Z"})
    h.run()
    return h


def test_spliced_values_are_the_values_sent(tmp_path: Path, serve: Any) -> None:
    s: Server = serve(profile(tmp_path).db)
    expected = {k: v for k, v in sorted(TRAITS.items()) if k != "gone"}
    r = s.get("users/profiles/user_id:u1/traits", params={"limit": 200})
    url = f"/v1/spaces/{SPACE}/collections/users/profiles/user_id:u1/traits"
    # Byte for byte what encoding the decoded values gives.
    assert r.content == orjson.dumps({"traits": expected, "cursor": {"url": url, "has_more": False, "next": "",
                                                                     "limit": 200}})
    verbose = s.get("users/profiles/user_id:u1/traits", params={"verbose": "true", "limit": 3}).json()
    assert verbose["traits"] == {k: {"value": expected[k], "source_id": "src_web",
                                     "updated_at": "2024-01-02T00:00:00.000Z"} for k in list(expected)[:3]}
    assert verbose["cursor"] == {"url": url, "has_more": True, "next": list(expected)[2], "limit": 3}
    assert s.get("users/profiles/user_id:u1/traits", params={"include": "obj,nope"}).json()["traits"] == \
        {"obj": TRAITS["obj"]}
    assert s.get("users/profiles/user_id:u2/traits").status_code == 404


def test_auth_header_forms(tmp_path: Path, serve: Any) -> None:
    s: Server = serve(profile(tmp_path).db)
    url = f"http://127.0.0.1:{s.port}/v1/spaces/{SPACE}/collections/users/profiles/user_id:u1/traits"

    def status(header: str) -> int:
        return httpx.get(url, headers={"Authorization": header}).status_code

    token = base64.b64encode(f"{SECRET}:".encode()).decode()
    assert status(f"Basic {token}") == 200
    assert status(f"basic {token}") == 200
    assert status(f"Basic  {token}") == 200
    assert status("Basic " + base64.b64encode(f"{SECRET}:ignored-password".encode()).decode()) == 200
    assert status("Basic " + base64.b64encode(f"{SECRET}x:".encode()).decode()) == 401
    assert status("Basic " + base64.b64encode(b"wrong:").decode()) == 401
    assert status(f"Bearer {token}") == 401
    assert status("Basic !!") == 401


def test_cursor_url_of_an_escaped_identifier(tmp_path: Path, serve: Any) -> None:
    s: Server = serve(profile(tmp_path, user_id="q?x#y").db)
    r = s.get("users/profiles/user_id:q%3Fx%23y/traits", params={"limit": 1})
    assert r.status_code == 200
    assert r.json()["cursor"]["url"] == f"/v1/spaces/{SPACE}/collections/users/profiles/user_id:q%3Fx%23y/traits"
