"""Run one adapter exchange for one batch: every request rate-limited, authorised, sent, logged.

The adapter's exchange is pure (it yields requests and is sent responses); this is where the
world happens to it. For each request: wait for a slot of the destination's cap, put the
current token on it when the adapter has ``TokenAuth``, send it, feed the answer back to the
limiter, and keep a redacted record for the debugger. An answer the adapter's auth calls
"expired" (401, Marketo 601/602) drops the token, fetches a new one and sends the same
request once more: a refresh is not a failed attempt.

Failures inside the adapter are contained here: ``InvalidPayload`` for a batch is retried item
by item so one bad message cannot fail its neighbours, and any other exception becomes a
retryable ``ADAPTER_ERROR`` for the batch (logged with its traceback) instead of a dead worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from traitsync.delivery.limiter import Limiter
from traitsync.delivery.redact import Redactor
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.tokens import TokenCache
from traitsync.delivery.transport import Transport, TransportError
from traitsync.destinations.auth import Token, TokenRejected
from traitsync.destinations.base import Item, Outcome, Request, Response
from traitsync.destinations.http import throttle_delay
from traitsync.errors import InvalidPayload

log = structlog.get_logger("traitsync.delivery")

#: A request leaves at most this long after its rate-limit slot, or it takes a new slot.
LATE_SEND_TOLERANCE = 0.01
#: Outcomes after which a profile's later messages in the same exchange must wait (the message
#: will be sent again, so anything after it would arrive first). Delivered and dropped (dead)
#: messages hold nothing back.
_HOLDING = frozenset({"retry", "auth", "unsent"})


class Stopped(Exception):
    """Delivery is stopping before this exchange sent anything: give its rows back untouched."""


@dataclass
class ExchangeResult:
    outcomes: list[Outcome]
    requests: list[dict[str, Any]] = field(default_factory=list)
    http_status: int | None = None
    detail: str | None = None
    sent_any: bool = False
    #: Items already handed to ``on_request`` (settled as their request finished).
    settled: set[int] = field(default_factory=set)


#: Called as each request of a simple (build/classify) exchange finishes: the item indices it
#: carried, their outcomes, and that request's own result (its request log, status, detail).
OnRequest = Callable[[list[int], list[Outcome], ExchangeResult], None]


class Executor:
    """Runs exchanges for one destination; shared by that destination's delivery threads."""

    def __init__(self, target: DeliveryTarget, transport: Transport, limiter: Limiter, *,
                 stop: threading.Event | None = None, hold: Callable[[], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.hold = hold or (lambda: False)
        self.transport = transport
        self.limiter = limiter
        self.stop = stop or threading.Event()
        self.clock = clock
        self.redact = Redactor(target.settings.secrets())
        auth = target.adapter.auth
        self.tokens = TokenCache(auth, target.settings) if auth is not None else None

    # -- one request ---------------------------------------------------------------------------

    def _send(self, request: Request, purpose: str, result: ExchangeResult) -> Response:
        if not result.sent_any and (self.stop.is_set() or self.hold()):
            raise Stopped  # stopping, or the destination was paused while this batch waited
        if request.delay > 0:
            self.stop.wait(request.delay)  # a job poll backing off; stopping cuts the wait short
        while True:
            wait = self.limiter.acquire(1)
            if wait <= 0:
                break
            if not result.sent_any and self.stop.is_set():
                raise Stopped
            due = time.monotonic() + wait
            time.sleep(wait)
            if time.monotonic() - due <= LATE_SEND_TOLERANCE:
                break
            # Overslept (a busy machine): a late send could crowd the next window; take a new slot.
        started = self.clock()
        try:
            response = self.transport.send(request, request.timeout or self.target.timeout_s)
        except TransportError as exc:
            response = Response(0, error=exc.code, settings_error=exc.settings)
            result.detail = self.redact(exc.message)
        result.sent_any = True
        retry_after = throttle_delay(response) if response.status == 429 else None
        throttle = self.target.adapter.throttle
        hint = throttle(response) if throttle is not None and response.error is None else None
        if hint is not None:
            self.limiter.observe(429, hint)  # throttled inside a 2xx answer: slow down like a 429
        else:
            self.limiter.observe(response.status if response.error is None else None, retry_after)
        result.requests.append({
            "method": request.method, "url": self.redact(request.url), "purpose": purpose,
            "status": response.status if response.error is None else None, "error": response.error,
            "duration_ms": int((self.clock() - started) * 1000)})
        if response.error is None:
            result.http_status = response.status
            if response.status >= 300:
                result.detail = self.redact(response.body[:500].decode("utf-8", "replace"))
        return response

    def _token(self, result: ExchangeResult) -> Token:
        assert self.tokens is not None
        token = self.tokens.get(lambda request, purpose: self._send(request, purpose, result))
        self.redact.add(token.value)
        return token

    # -- one exchange --------------------------------------------------------------------------

    def run(self, items: Sequence[Item], on_request: OnRequest | None = None,
            keys: Sequence[str] | None = None) -> ExchangeResult:
        """Outcomes for ``items`` (one each), isolating items that will not build.

        With ``on_request``, a simple exchange reports each request's items as soon as it is
        answered, so they are settled then rather than when the last request of the batch is
        answered. ``keys`` are the items' order keys (profiles): once an item is not delivered
        (retry, auth), later requests carrying the same profile are not sent (``unsent``), so
        they cannot overtake it.
        """
        try:
            return self._run(items, on_request, keys)
        except InvalidPayload as exc:
            if len(items) == 1:
                return ExchangeResult([Outcome.drop(exc.code.upper(), self.redact(exc.message))])
        combined = ExchangeResult([])
        held: set[str] = set()
        for position, item in enumerate(items):
            if keys is not None and keys[position] in held:
                combined.outcomes.append(Outcome.unsent())
                continue
            def shifted(indices: list[int], outcomes: list[Outcome], part: ExchangeResult,
                        at: int = position) -> None:
                assert on_request is not None
                on_request([at + i for i in indices], outcomes, part)

            one = self.run([item], shifted if on_request is not None else None)
            if one.settled:
                combined.settled.add(position)
            combined.outcomes.extend(one.outcomes)
            combined.requests.extend(one.requests)
            combined.http_status = one.http_status if one.http_status is not None else combined.http_status
            combined.detail = one.detail or combined.detail
            combined.sent_any = combined.sent_any or one.sent_any
            if keys is not None and one.outcomes and one.outcomes[0].kind in _HOLDING:
                held.add(keys[position])
        return combined

    def _run(self, items: Sequence[Item], on_request: OnRequest | None = None,
             keys: Sequence[str] | None = None) -> ExchangeResult:
        result = ExchangeResult([])
        adapter = self.target.adapter
        token: Token | None = None
        if self.tokens is not None:
            try:
                token = self._token(result)
            except TokenRejected as exc:
                outcome = (Outcome.retry(code=exc.code, message=str(exc)) if exc.retryable
                           else Outcome.auth(exc.code, str(exc)))
                result.outcomes = [outcome] * len(items)
                result.detail = self.redact(str(exc))
                return result
        if adapter.exchange is None:
            return self._run_requests(items, token, result, on_request, keys)
        exchange = adapter.start(items, self.target.settings, token)
        try:
            request = next(exchange)
            while True:
                response = self._authorised_send(request, token, result)
                if (adapter.auth is not None and token is not None and request.authorize
                        and adapter.auth.expired(response)):
                    assert self.tokens is not None
                    self.tokens.invalidate(token)
                    try:
                        token = self._token(result)
                    except TokenRejected as exc:
                        exchange.close()
                        outcome = (Outcome.retry(code=exc.code, message=str(exc)) if exc.retryable
                                   else Outcome.auth(exc.code, str(exc)))
                        result.outcomes = [outcome] * len(items)
                        return result
                    response = self._authorised_send(request, token, result)
                request = exchange.send(response)
        except StopIteration as done:
            outcomes = list(done.value)
        except (Stopped, InvalidPayload):
            raise
        except Exception as exc:  # a bug in an adapter must not kill delivery or lose the batch
            log.exception("adapter failed", destination=self.target.destination_id, adapter=adapter.slug)
            outcomes = [Outcome.retry(code="ADAPTER_ERROR", message=self.redact(repr(exc)))] * len(items)
        if len(outcomes) != len(items):
            log.error("adapter returned the wrong number of outcomes", destination=self.target.destination_id,
                      adapter=adapter.slug, outcomes=len(outcomes), items=len(items))
            outcomes = [Outcome.retry(code="ADAPTER_ERROR")] * len(items)
        result.outcomes = outcomes
        return result

    def _run_requests(self, items: Sequence[Item], token: Token | None, result: ExchangeResult,
                      on_request: OnRequest | None = None, keys: Sequence[str] | None = None) -> ExchangeResult:
        """The simple form (``build`` then ``classify`` per request), run here rather than as a
        generator so that stopping, or a pause, between two requests of a batch sends nothing
        more: the items not yet sent go back to the queue untouched."""
        adapter = self.target.adapter
        assert adapter.build is not None
        outcomes: list[Outcome] = [Outcome.unsent()] * len(items)
        held: set[str] = set()
        for request in adapter.build(items, self.target.settings):
            if result.sent_any and (self.stop.is_set() or self.hold()):
                break
            if keys is not None and held and any(keys[i] in held for i in request.indices):
                held.update(keys[i] for i in request.indices)  # everyone in it now waits too
                continue
            logged = len(result.requests)
            try:
                response = self._authorised_send(request, token, result)
            except Stopped:
                break
            if adapter.auth is not None and token is not None and request.authorize and adapter.auth.expired(response):
                assert self.tokens is not None
                self.tokens.invalidate(token)
                try:
                    token = self._token(result)
                except TokenRejected as exc:
                    outcome = (Outcome.retry(code=exc.code, message=str(exc)) if exc.retryable
                               else Outcome.auth(exc.code, str(exc)))
                    for i in request.indices:
                        outcomes[i] = outcome
                    break
                response = self._authorised_send(request, token, result)
            carried = [items[i] for i in request.indices]
            got = adapter.classify(response, carried)
            if len(got) != len(carried):
                log.error("adapter returned the wrong number of outcomes", destination=self.target.destination_id,
                          adapter=adapter.slug, outcomes=len(got), items=len(carried))
                got = [Outcome.retry(code="ADAPTER_ERROR")] * len(carried)
            for i, outcome in zip(request.indices, got, strict=True):
                outcomes[i] = outcome
                if keys is not None and outcome.kind in _HOLDING:
                    held.add(keys[i])
            if on_request is not None:
                part = ExchangeResult(got, result.requests[logged:], result.http_status, result.detail, True)
                on_request(list(request.indices), got, part)
                result.settled.update(request.indices)
            if any(o.kind == "auth" for o in got):
                break  # the rest would fail alike; they wait for the pause to end
        if not result.sent_any:
            raise Stopped
        result.outcomes = outcomes
        return result

    def _authorised_send(self, request: Request, token: Token | None, result: ExchangeResult) -> Response:
        auth = self.target.adapter.auth
        if auth is not None and token is not None and request.authorize:
            request = auth.apply(request, token)
        return self._send(request, request.purpose, result)
