"""The destination platform end to end: fetched tokens, lookups, per-item outcomes, secrets.

Two test adapters speak to a local fake over real HTTP through the real delivery worker:
``acme`` (OAuth client credentials; a lookup by email, then an update or a create) and
``bulkco`` (a bulk endpoint whose answer lists failed items by index).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen
from tests.destinations.harness import Harness, harness
from traitsync.delivery.limiter import RateLimiter
from traitsync.delivery.overview import recent_messages
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.worker import DestinationWorker
from traitsync.destinations.auth import Token, TokenAuth, client_credentials_request, oauth_token
from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Exchange,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
    outcomes_by_index,
    run_exchange,
    status_outcome,
)

from .test_worker import FAST

__all__ = ["harness"]

CLIENT_SECRET = "cs-very-secret-123"


class AcmeSettings(DestinationSettings):
    client_id: str
    client_secret: SecretStr


def acme_exchange(items: Sequence[Item], settings: AcmeSettings, token: Token | None) -> Exchange:
    """Find the contact by email; update it when found, else create it."""
    base = settings.endpoint or "https://api.acme.example"
    outcomes: list[Outcome] = []
    for item in items:
        email = item.message.get("traits", {}).get("email") or item.message.get("userId")
        found = yield Request("GET", f"{base}/contacts?email={email}", purpose="lookup")
        if not found.ok:
            outcomes.append(status_outcome(found))
            continue
        hits = found.json() or []
        traits = item.message.get("traits", {})
        if hits:
            answer = yield Request("PATCH", f"{base}/contacts/{hits[0]['id']}", dumps(traits),
                                   headers={"Content-Type": "application/json"})
        else:
            answer = yield Request("POST", f"{base}/contacts", dumps({"email": email, **traits}),
                                   headers={"Content-Type": "application/json"})
        outcomes.append(status_outcome(answer))
    return outcomes


ACME = Destination(
    name="Acme", slug="acme_test", settings_model=AcmeSettings, exchange=acme_exchange,
    auth=TokenAuth(fetch=lambda s: client_credentials_request(f"{s.endpoint}/oauth/token", s.client_id,
                                                              s.client_secret.get_secret_value()),
                   parse=oauth_token),
    default_rate=100, max_batch=5)


class BulkSettings(DestinationSettings):
    api_key: SecretStr


def bulk_build(items: Sequence[Item], settings: BulkSettings) -> list[Request]:
    body = dumps({"users": [{"id": i.message["userId"], "mid": i.message["messageId"]} for i in items]})
    return [Request("POST", f"{settings.endpoint}/bulk", body, tuple(range(len(items))),
                    headers={"Api-Key": settings.api_key.get_secret_value(), "Content-Type": "application/json"})]


def bulk_classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    base = status_outcome(response)
    if base.kind != "ok":
        return [base] * len(items)
    failed = {int(e["index"]): (Outcome.retry(code=e["code"]) if e.get("retryable") else Outcome.drop(e["code"]))
              for e in (response.json() or {}).get("errors", [])}
    return outcomes_by_index(len(items), failed)


BULK = Destination(name="BulkCo", slug="bulk_test", settings_model=BulkSettings, build=bulk_build,
                   classify=bulk_classify, default_rate=100, max_batch=10)


@pytest.fixture
def acme_fake() -> Iterator[FakeVendor]:
    state: dict[str, Any] = {"issued": 0, "live": None, "contacts": {"known@x.io": "c-1"}}

    def token(seen: Seen, _m: re.Match[str]) -> Answer:
        form = seen.form()
        if form.get("client_secret") != [CLIENT_SECRET]:
            return Answer(401, {"error": "invalid_client"})
        state["issued"] += 1
        state["live"] = f"tok-{state['issued']}"
        return Answer(200, {"access_token": state["live"], "expires_in": 3600, "token_type": "bearer"})

    def authorised(seen: Seen) -> bool:
        return seen.header("Authorization") == f"Bearer {state['live']}"

    def lookup(seen: Seen, _m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return Answer(401, {"error": "expired"})
        email = seen.query["email"][0]
        return Answer(200, [{"id": state["contacts"][email]}] if email in state["contacts"] else [])

    def write(seen: Seen, _m: re.Match[str]) -> Answer:
        return Answer(200, {"ok": True}) if authorised(seen) else Answer(401, {"error": "expired"})

    fake = FakeVendor([
        Route("POST", "/oauth/token", token, form=True, schema={
            "type": "object", "required": ["grant_type", "client_id", "client_secret"],
            "properties": {"grant_type": {"const": "client_credentials"}}}),
        Route("GET", "/contacts", lookup),
        Route("PATCH", r"/contacts/[\w-]+", write, schema={"type": "object"}),
        Route("POST", "/contacts", write, schema={"type": "object", "required": ["email"]}),
    ]).start()
    fake.state = state  # type: ignore[attr-defined]
    yield fake
    fake.stop()


def identify(n: int, email: str) -> dict[str, Any]:
    return {"type": "identify", "userId": f"u{n}", "traits": {"email": email, "vip": True},
            "messageId": f"m{n}"}


def acme_worker(harness: Harness, fake: FakeVendor) -> DestinationWorker:
    settings = AcmeSettings(endpoint=fake.url, client_id="cid", client_secret=SecretStr(CLIENT_SECRET))
    target = DeliveryTarget.simple("dst_acme", ACME, settings, rate=1000, timeout_s=2.0)
    return DestinationWorker(harness.db, target, limiter=RateLimiter(1000), backoff=FAST, poll_interval=0.01)


def test_lookup_then_write_with_a_token_refreshed_once_when_it_expires(harness: Harness,
                                                                       acme_fake: FakeVendor) -> None:
    worker = acme_worker(harness, acme_fake)
    harness.enqueue("dst_acme", [identify(1, "known@x.io")])
    worker.drain(10)
    # The vendor revokes the token mid-run: the next request answers 401 "expired".
    acme_fake.state["live"] = "rotated-by-vendor"  # type: ignore[attr-defined]
    result = harness.run(worker, [identify(2, "new@x.io")])
    assert result.states == {"m1": "delivered", "m2": "delivered"}
    tokens = acme_fake.on("POST", "/oauth/token")
    assert len(tokens) == 2  # the first fetch and exactly one refresh
    # A refresh is not a failed attempt: one attempt per message.
    assert [(mid, attempt, outcome) for mid, attempt, outcome, _, _ in result.attempts] == [
        ("m1", 1, "ok"), ("m2", 1, "ok")]
    assert acme_fake.on("PATCH", "/contacts/c-1")[0].json() == {"email": "known@x.io", "vip": True}
    assert acme_fake.on("POST", "/contacts")[0].json() == {"email": "new@x.io", "vip": True}
    assert acme_fake.violations == []
    # Every request a message caused is in the debugger, token fetches and lookups included.
    conn = harness.db.connect()
    entries = {e.message_id: e for e in recent_messages(conn, "dst_acme")}
    conn.close()
    first = [(r["purpose"], r["method"], r["status"]) for r in entries["m1"].attempts[0].requests]
    assert first == [("token", "POST", 200), ("lookup", "GET", 200), ("send", "PATCH", 200)]
    second = [(r["purpose"], r["method"], r["status"]) for r in entries["m2"].attempts[0].requests]
    assert second == [("lookup", "GET", 401), ("token", "POST", 200), ("lookup", "GET", 200),
                      ("send", "POST", 200)]
    assert CLIENT_SECRET not in json.dumps([a[4] for a in result.attempts])


def test_a_refused_client_secret_pauses_the_destination_and_keeps_the_message(harness: Harness,
                                                                              acme_fake: FakeVendor) -> None:
    settings = AcmeSettings(endpoint=acme_fake.url, client_id="cid", client_secret=SecretStr("wrong-secret-456"))
    target = DeliveryTarget.simple("dst_acme", ACME, settings, rate=1000, timeout_s=2.0)
    worker = DestinationWorker(harness.db, target, limiter=RateLimiter(1000), backoff=FAST, poll_interval=0.01,
                               auth_pause_s=60)
    result = harness.run(worker, [identify(1, "known@x.io")], include_retries=False)
    assert result.states == {"m1": "retry_wait"} and result.codes == {"m1": "401"}
    assert worker.paused and worker.last_pause_code == "401"
    assert "wrong-secret-456" not in json.dumps(result.attempts)


def test_golden_exchange_without_a_network() -> None:
    settings = AcmeSettings(endpoint="https://acme.test", client_id="cid", client_secret=SecretStr("s"))
    answers = iter([Response(200, body=b'[{"id": "c-9"}]'), Response(500)])
    outcomes, sent = run_exchange(ACME.start([Item(identify(1, "a@x.io"))], settings, Token("t")),
                                  lambda _req: next(answers))
    assert [(r.purpose, r.method, r.url) for r in sent] == [
        ("lookup", "GET", "https://acme.test/contacts?email=a@x.io"), ("send", "PATCH", "https://acme.test/contacts/c-9")]
    assert outcomes == [Outcome.retry(None, "500")]


def test_a_batch_answer_failing_two_of_ten_retries_exactly_those_two(harness: Harness) -> None:
    calls: list[list[str]] = []

    def bulk(seen: Seen, _m: re.Match[str]) -> Answer:
        mids = [u["mid"] for u in seen.json()["users"]]
        calls.append(mids)
        if len(calls) == 1:
            return Answer(200, {"errors": [{"index": 3, "code": "busy", "retryable": True},
                                           {"index": 7, "code": "busy", "retryable": True}]})
        return Answer(200, {"errors": []})

    fake = FakeVendor([Route("POST", "/bulk", bulk, schema={
        "type": "object", "required": ["users"],
        "properties": {"users": {"type": "array", "maxItems": 10}}})]).start()
    try:
        target = DeliveryTarget.simple("dst_bulk", BULK, BulkSettings(endpoint=fake.url, api_key=SecretStr("k" * 8)),
                                       rate=1000)
        worker = DestinationWorker(harness.db, target, limiter=RateLimiter(1000), backoff=FAST, poll_interval=0.01)
        result = harness.run(worker, [{"type": "identify", "userId": f"u{i}", "messageId": f"m{i}"}
                                      for i in range(10)])
    finally:
        fake.stop()
    assert calls[0] == [f"m{i}" for i in range(10)]
    assert sorted(m for call in calls[1:] for m in call) == ["m3", "m7"]  # only those, once each
    assert set(result.states.values()) == {"delivered"}
    assert sorted((mid, attempt) for mid, attempt, *_ in result.attempts if attempt > 1) == [("m3", 2), ("m7", 2)]
    assert fake.violations == []


def test_destinations_check_gives_one_verdict(acme_fake: FakeVendor) -> None:
    from traitsync.delivery.check import check_destination

    checked = Destination(name="Acme", slug="acme_check", settings_model=AcmeSettings, exchange=acme_exchange,
                          auth=ACME.auth, check=lambda s, _t: Request("GET", f"{s.endpoint}/contacts?email=x@y.z",
                                                                      purpose="check"))
    good = AcmeSettings(endpoint=acme_fake.url, client_id="cid", client_secret=SecretStr(CLIENT_SECRET))
    result = check_destination(DeliveryTarget.simple("dst_c", checked, good))
    assert result.ok and result.verdict == "Acme accepted the credentials (200)"
    assert [(r["purpose"], r["status"]) for r in result.requests] == [("token", 200), ("check", 200)]
    bad = AcmeSettings(endpoint=acme_fake.url, client_id="cid", client_secret=SecretStr("nope-nope-nope"))
    refused = check_destination(DeliveryTarget.simple("dst_c", checked, bad))
    assert not refused.ok and refused.verdict == "credentials refused: token endpoint answered 401: invalid_client"
    assert "nope-nope-nope" not in json.dumps(refused.requests)


def test_destinations_list_shows_every_adapter_at_80_columns() -> None:
    from typer.testing import CliRunner

    from traitsync.cli import app

    result = CliRunner().invoke(app, ["destinations", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    webhook = next(line for line in lines if "│ webhook" in line)
    assert "event, list" in webhook and "50" in webhook
    facebook = [line for line in lines if "facebook" in line or "om_audiences" in line]
    assert "list" in facebook[0] and "10,000" in facebook[0]


def test_a_throttle_inside_a_2xx_answer_slows_the_limiter_like_a_429() -> None:
    from traitsync.delivery.executor import Executor

    class Stub:
        def send(self, request: Request, timeout: float) -> Response:
            return Response(200, body=b'{"success": false, "errors": [{"code": "606"}]}')

        def close(self) -> None:
            return None

    throttled = Destination(name="Throttly", slug="throttly", settings_model=BulkSettings, build=bulk_build,
                            classify=lambda r, items: [Outcome.retry(20.0, "606")] * len(items),
                            throttle=lambda r: 20.0 if b'"606"' in r.body else None, max_batch=10)
    limiter = RateLimiter(100)
    executor = Executor(DeliveryTarget.simple("dst_t", throttled, BulkSettings(endpoint="http://x", api_key=SecretStr(
        "kkkkkkkk")), rate=100), Stub(), limiter)
    before = limiter.current_rate
    result = executor.run([Item({"type": "identify", "userId": "u1", "messageId": "m1"})])
    assert result.outcomes == [Outcome.retry(20.0, "606")]
    assert limiter.blocked_until >= time.monotonic() + 19 and limiter.current_rate < before
