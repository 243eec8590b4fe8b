"""Hypothesis: whatever a client sends, the Tracking API never answers 5xx."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.conftest import LiveApp, start_live_app

json_scalars = (st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False)
                | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
field_names = st.sampled_from(["type", "userId", "anonymousId", "event", "properties", "traits", "context",
                               "integrations", "messageId", "timestamp", "sentAt", "originalTimestamp",
                               "groupId", "previousId", "name", "category", "writeKey", "batch"])
messages = st.dictionaries(field_names, json_values, max_size=8)
bodies = (
    messages.map(lambda m: orjson.dumps(m))
    | st.dictionaries(st.just("batch"), st.lists(messages | json_values, max_size=5)).map(orjson.dumps)
    | st.binary(max_size=200)
    | json_values.map(lambda v: orjson.dumps(v))
)
auth_headers = st.sampled_from([
    None, "Basic " + base64.b64encode(b"web-key:").decode(), "Basic " + base64.b64encode(b"x").decode(),
    "Basic ???", "Bearer web-key", "", "Basic " + base64.b64encode(b"\xff\xfe").decode(),
])
content_types = st.sampled_from([None, "application/json", "text/plain", "application/json; charset=utf-8",
                                 "multipart/form-data", "x/y"])
encodings = st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip-but-lying"])
paths = st.sampled_from(["/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias",
                         "/v1/batch", "/v1/import"])


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    app = start_live_app(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    yield app
    app.close()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, body=bodies, auth=auth_headers, content_type=content_types, encoding=encodings,
       compress=st.booleans())
def test_never_5xx(fuzz_app: LiveApp, path: str, body: bytes, auth: str | None, content_type: str | None,
                   encoding: str | None, compress: bool) -> None:
    headers: dict[str, Any] = {}
    if auth is not None:
        headers["Authorization"] = auth
    if content_type is not None:
        headers["Content-Type"] = content_type
    if encoding is not None:
        headers["Content-Encoding"] = encoding
        if compress and encoding == "gzip":
            body = gzip.compress(body)
    response = httpx.post(fuzz_app.base_url + path, content=body, headers=headers, timeout=10)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json(), dict)
