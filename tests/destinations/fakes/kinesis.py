"""Kinesis for tests: moto in server mode, behind a thin validating proxy that can fail records.

``moto`` (``ThreadedMotoServer``) implements Kinesis from botocore's service model, so the
records the adapter sends are really stored and read back with ``GetRecords``. The proxy in
front (a ``FakeVendor``) checks every ``PutRecords`` body against the API's documented shape
(at most 500 records, base64 ``Data``, a 1-256 character ``PartitionKey``) and that it is SigV4
signed, and can make chosen records fail the way Kinesis reports it: removed from what reaches
moto, answered in place with ``ErrorCode`` and counted in ``FailedRecordCount``.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jsonschema
from moto.server import ThreadedMotoServer

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE00000001"
SECRET_KEY = "aws-secret-key-do-not-leak-0123456789"

PUT_RECORDS: dict[str, Any] = {
    "type": "object", "required": ["Records"], "additionalProperties": False,
    "oneOf": [{"required": ["StreamName"]}, {"required": ["StreamARN"]}],
    "properties": {
        "StreamName": {"type": "string", "minLength": 1, "maxLength": 128},
        "StreamARN": {"type": "string"},
        "Records": {"type": "array", "minItems": 1, "maxItems": 500, "items": {
            "type": "object", "required": ["Data", "PartitionKey"], "additionalProperties": False,
            "properties": {"Data": {"type": "string", "contentEncoding": "base64",
                                    "pattern": "^[A-Za-z0-9+/]*={0,2}$"},
                           "PartitionKey": {"type": "string", "minLength": 1, "maxLength": 256},
                           "ExplicitHashKey": {"type": "string"}}}},
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def forwarder(moto_url: str, target: str, list_key: str, result_key: str, count_key: str,
              failures: list[dict[int, str]], schema: dict[str, Any], violations: list[str]) -> Any:
    """A proxy handler: check the target and the signature, fail the records ``failures[0]``
    names (consumed per call), forward the rest to moto and splice the answer back together."""

    def handler(seen: Seen, _m: re.Match[str]) -> Answer:
        if seen.header("X-Amz-Target") != target:
            return _forward(moto_url, seen, seen.body)
        auth = seen.header("Authorization") or ""
        if not auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"):
            return Answer(400, {"__type": "MissingAuthenticationTokenException", "message": "not signed"})
        body = seen.json()
        try:
            jsonschema.validate(body, schema)
        except jsonschema.ValidationError as exc:
            violations.append(f"{target}: {exc.message}")
            return Answer(400, {"__type": "ValidationException", "message": exc.message})
        fail = failures.pop(0) if failures else {}
        entries = body[list_key]
        kept = [e for i, e in enumerate(entries) if i not in fail]
        results: list[dict[str, Any]] = []
        if kept:
            answer = _forward(moto_url, seen, json.dumps({**body, list_key: kept}).encode())
            if answer.status != 200:
                return answer
            results = list(answer.body[result_key])  # type: ignore[index]
        out = [{"ErrorCode": fail[i], "ErrorMessage": "injected"} if i in fail else results.pop(0)
               for i in range(len(entries))]
        return Answer(200, {count_key: sum(1 for o in out if "ErrorCode" in o), result_key: out})

    return handler


def _forward(moto_url: str, seen: Seen, body: bytes) -> Answer:
    headers = {k: v for k, v in seen.headers.items() if k.lower() not in ("content-length", "host")}
    reply = httpx.post(moto_url + seen.path, content=body, headers=headers, timeout=10)
    try:
        data: Any = reply.json()
    except ValueError:
        data = reply.content
    return Answer(reply.status_code, data, headers={"Content-Type": reply.headers.get("content-type", "")})


def kinesis_proxy(moto_url: str, failures: list[dict[int, str]], *, delay: float = 0.0) -> FakeVendor:
    fake = FakeVendor([], delay=delay)
    fake.routes.append(Route("POST", "/", forwarder(moto_url, "Kinesis_20131202.PutRecords", "Records", "Records",
                                                    "FailedRecordCount", failures, PUT_RECORDS, fake.violations)))
    return fake


def read_stream(moto_url: str, stream: str) -> list[tuple[str, Any]]:
    """Every (partition key, decoded JSON data) in the stream, read back through botocore."""
    import botocore.session

    client = botocore.session.get_session().create_client(
        "kinesis", region_name=REGION, endpoint_url=moto_url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY)
    out: list[tuple[str, Any]] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = client.get_records(ShardIterator=iterator, Limit=10000)["Records"]
        out.extend((r["PartitionKey"], json.loads(r["Data"])) for r in records)
    return out


def create_stream(moto_url: str, stream: str, shards: int = 1) -> None:
    import botocore.session

    client = botocore.session.get_session().create_client(
        "kinesis", region_name=REGION, endpoint_url=moto_url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY)
    client.create_stream(StreamName=stream, ShardCount=shards)


def decode(data: str) -> Any:
    return json.loads(base64.b64decode(data))
