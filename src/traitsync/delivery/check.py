"""``traitsync destinations check ID``: settings and credentials against the endpoint, one verdict.

Runs the adapter's token fetch (when it has one) and its ``check`` request through the same
executor delivery uses, so what passes here is what delivery will do; secrets are redacted from
everything reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from traitsync.delivery.executor import ExchangeResult, Executor
from traitsync.delivery.limiter import RateLimiter
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.transport import HttpTransport, Transport
from traitsync.destinations.auth import TokenRejected
from traitsync.destinations.base import status_outcome


@dataclass
class CheckResult:
    ok: bool
    verdict: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def check_destination(target: DeliveryTarget, transport: Transport | None = None) -> CheckResult:
    transport = transport or HttpTransport()
    executor = Executor(target, transport, RateLimiter(target.rate))
    result = ExchangeResult([])
    adapter = target.adapter
    token = None
    try:
        if executor.tokens is not None:
            try:
                token = executor._token(result)
            except TokenRejected as exc:
                return CheckResult(False, f"credentials refused: {executor.redact(str(exc))}", result.requests)
        if adapter.check is None:
            verdict = "settings are valid" + ("; a token was issued" if token is not None else "")
            return CheckResult(True, verdict + f" ({adapter.name} has no read-only check request)", result.requests)
        response = executor._authorised_send(adapter.check(target.settings, token), token, result)
        outcome = status_outcome(response)
        if outcome.kind == "ok":
            return CheckResult(True, f"{adapter.name} accepted the credentials ({response.status})", result.requests)
        if response.error is not None:
            return CheckResult(False, f"cannot reach {adapter.name}: {response.error}", result.requests)
        if outcome.kind == "auth":
            return CheckResult(False, f"{adapter.name} refused the credentials ({response.status}); "
                               "check the destination's settings", result.requests)
        return CheckResult(False, f"{adapter.name} answered {response.status}: {result.detail or ''}".strip(),
                           result.requests)
    finally:
        transport.close()
