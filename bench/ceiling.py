"""The ingest ceiling: a raw ASGI app that only reads the body, parses it with orjson, answers 200.

What traitsync's durable ``/v1/batch`` is compared with: the same server stack (uvicorn, uvloop,
httptools) and the same bodies, with no validation, no dedup and no storage.
"""

from __future__ import annotations

from typing import Any

import orjson

OK = b'{"success":true}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(OK)).encode())]})
    await send({"type": "http.response.body", "body": OK})
