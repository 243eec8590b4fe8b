"""EventBridge for tests: moto in server mode (a bus whose rule copies events to an SQS queue, so
delivered events can be read back) behind the validating, record-failing proxy of ``kinesis.py``."""

from __future__ import annotations

import json
from typing import Any

import botocore.session

from tests.destinations.fakes.kinesis import ACCESS_KEY, REGION, SECRET_KEY, forwarder
from tests.destinations.fakes.server import FakeVendor, Route

PUT_EVENTS: dict[str, Any] = {
    "type": "object", "required": ["Entries"], "additionalProperties": False,
    "properties": {"Entries": {"type": "array", "minItems": 1, "maxItems": 10, "items": {
        "type": "object", "required": ["Source", "DetailType", "Detail"], "additionalProperties": False,
        "properties": {"Source": {"type": "string", "minLength": 1, "not": {"pattern": "^aws\\."}},
                       "DetailType": {"type": "string", "minLength": 1, "maxLength": 128},
                       "Detail": {"type": "string", "contentMediaType": "application/json"},
                       "Time": {"type": "number"}, "EventBusName": {"type": "string"},
                       "Resources": {"type": "array", "items": {"type": "string"}},
                       "TraceHeader": {"type": "string"}}}}},
}


def _client(service: str, moto_url: str) -> Any:
    return botocore.session.get_session().create_client(
        service, region_name=REGION, endpoint_url=moto_url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY)


def create_bus(moto_url: str, bus: str, source: str) -> str:
    """A bus whose every event from ``source`` lands in an SQS queue; returns the queue URL."""
    sqs, events = _client("sqs", moto_url), _client("events", moto_url)
    queue = sqs.create_queue(QueueName=f"{bus}-copy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name=bus)
    events.put_rule(Name="copy", EventBusName=bus, EventPattern=json.dumps({"source": [source]}))
    # moto's default target template leaves a caller-given Time unquoted (invalid JSON); this
    # transformer copies the same fields with Time quoted.
    paths = {"time": "$.time", "detail-type": "$.detail-type", "source": "$.source", "detail": "$.detail"}
    template = '{"time": "<time>", "detail-type": "<detail-type>", "source": "<source>", "detail": <detail>}'
    events.put_targets(Rule="copy", EventBusName=bus, Targets=[{
        "Id": "queue", "Arn": arn, "InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}])
    return str(queue)


def read_events(moto_url: str, queue: str) -> list[dict[str, Any]]:
    """Every event the bus delivered so far (consumed)."""
    sqs = _client("sqs", moto_url)
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for message in got:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def eventbridge_proxy(moto_url: str, failures: list[dict[int, str]]) -> FakeVendor:
    fake = FakeVendor([])
    fake.routes.append(Route("POST", "/", forwarder(moto_url, "AWSEvents.PutEvents", "Entries", "Entries",
                                                    "FailedEntryCount", failures, PUT_EVENTS, fake.violations)))
    return fake
