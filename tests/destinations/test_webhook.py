"""Webhook adapter: exact requests for fixed messages, outcomes for recorded responses."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from pydantic import ValidationError

from traitsync.destinations.base import Outcome, Response, items_of
from traitsync.destinations.webhook import DESTINATION, WebhookSettings, build, classify, sign

M1 = {"type": "identify", "userId": "u1", "traits": {"vip": True}, "messageId": "personas_1"}
M2 = {"type": "track", "userId": "u2", "event": "Audience Entered", "messageId": "personas_2"}
LIST_ADD = {"type": "audience_list", "action": "add", "audience": {"id": "aud_1", "key": "vip", "name": "VIP"},
            "members": [{"type": "email", "value": "a@x.io"}], "messageId": "personas_3"}


def settings(**kw: object) -> WebhookSettings:
    return WebhookSettings.model_validate({"url": "https://hooks.example.com/in", **kw})


def test_one_request_per_message_by_default() -> None:
    reqs = build(items_of([M1, M2]), settings(headers={"X-Team": "growth"}))
    assert [(r.method, r.url, r.indices) for r in reqs] == [
        ("POST", "https://hooks.example.com/in", (0,)), ("POST", "https://hooks.example.com/in", (1,))]
    assert reqs[0].body == b'{"type":"identify","userId":"u1","traits":{"vip":true},"messageId":"personas_1"}'
    assert dict(reqs[0].headers) == {"X-Team": "growth", "Content-Type": "application/json",
                                     "User-Agent": "traitsync (webhook)"}


def test_batching_posts_json_arrays() -> None:
    msgs = [dict(M1, messageId=f"m{i}") for i in range(5)]
    reqs = build(items_of(msgs), settings(batch_size=2, method="PUT"))
    assert [r.indices for r in reqs] == [(0, 1), (2, 3), (4,)]
    assert [r.method for r in reqs] == ["PUT"] * 3
    assert json.loads(reqs[1].body) == [msgs[2], msgs[3]]


def test_hmac_sha256_signature_over_exact_body() -> None:
    reqs = build(items_of([M1]), settings(shared_secret="s3cret"))
    body = reqs[0].body
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert reqs[0].headers["X-Signature"] == expected
    assert sign(body, "s3cret") == expected
    sha1 = build(items_of([M1]), settings(shared_secret="s3cret", signature_algorithm="sha1"))[0]
    assert sha1.headers["X-Signature"] == hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()


def test_endpoint_overrides_url_and_list_mode() -> None:
    s = settings(endpoint="http://127.0.0.1:9/hook", create_audience_url="http://127.0.0.1:9/create", batch_size=10)
    create = dict(LIST_ADD, action="create", members=[], messageId="c")
    reqs = build(items_of([M1, create, LIST_ADD, M2]), s)
    assert [(r.url, r.indices) for r in reqs] == [
        ("http://127.0.0.1:9/create", (1,)), ("http://127.0.0.1:9/hook", (2,)), ("http://127.0.0.1:9/hook", (0, 3))]
    assert json.loads(reqs[1].body) == LIST_ADD


def test_settings_validation() -> None:
    with pytest.raises(ValidationError, match="needs `url`"):
        WebhookSettings.model_validate({})
    with pytest.raises(ValidationError, match="ASCII"):
        settings(headers={"X-Name": "héllo"})
    with pytest.raises(ValidationError):
        settings(unknown=1)
    assert "shared_secret" not in repr(settings(shared_secret="abc").shared_secret)


@pytest.mark.parametrize(("status", "headers", "expected"), [
    (200, {}, Outcome.ok()),
    (204, {}, Outcome.ok()),
    (429, {"retry-after": "7"}, Outcome.retry(7.0, "429")),
    (503, {}, Outcome.retry(None, "503")),
    (501, {}, Outcome.drop("501")),
    (400, {}, Outcome.drop("400")),
    (401, {}, Outcome.auth("401")),
    (403, {}, Outcome.auth("403")),
])
def test_classify_applies_status_to_every_message(status: int, headers: dict[str, str], expected: Outcome) -> None:
    assert classify(Response(status, headers), items_of([M1, M2])) == [expected, expected]


def test_create_keeps_external_id() -> None:
    create = dict(LIST_ADD, action="create", members=[])
    assert classify(Response(200, {}, b'{"externalId": 42}'), items_of([create])) == [Outcome.ok({"external_id": "42"})]
    assert classify(Response(200, {}, b"not json"), items_of([create])) == [Outcome.ok()]


def test_declares_capabilities() -> None:
    assert DESTINATION.name == "Webhook" and DESTINATION.slug == "webhook"
    assert DESTINATION.modes == {"event", "list"}
    assert DESTINATION.supports(M1) and DESTINATION.supports(LIST_ADD)
    assert not DESTINATION.supports({"type": "page"})
