"""The load every chaos test runs, and the rules the destination's stream must follow afterwards.

Clients keep posting new buyers (``Order Completed``) and refunds (``Order Refunded``, which takes
a buyer out of the audience) for half of those whose entry has arrived. The destination receives
both the track ``Audience Entered``/``Audience Exited`` and the identify ``traits.buyers``
true/false of every change. ``check_memberships`` then holds its stream to these rules:

* **no acknowledged change lost**: every buyer whose purchase was acknowledged and whose refund
  was never sent has received an entry (track and identify) and no exit; every buyer whose
  refund was acknowledged has received an exit of each type;
* **entries before exits**: the delivered stream may repeat messages (a kill between sending and
  recording the receipt resends them), so order is about *first* deliveries: for each profile
  and payload type, the first exit arrives after the first entry, and no entry arrives after
  the first exit (a late retry of an entry would leave the destination believing the buyer is
  still in). "Arrives" is the order in which the receiver recorded the requests. A refund that
  was sent but not acknowledged may or may not have been stored: only the order rule applies.
"""

from __future__ import annotations

import threading
import time

import httpx

from tests.activation_flow.conftest import wait_for
from tests.delivery.conftest import Receiver


def chaos_config(url: str) -> str:
    return f"""\
space_id: spa_test
sources: [{{id: src_web, write_key: web-key}}]
audiences:
  - key: buyers
    condition:
      all:
        - {{performed: {{event: Order Completed, at_least: 1}}}}
        - {{not: {{performed: {{event: Order Refunded, at_least: 1}}}}}}
destinations:
  - id: dst_hook
    kind: webhook
    rate_limit: 1000
    settings: {{url: "{url}/hook", batch_size: 100}}
    connections: [{{computation: buyers, send: [track, identify]}}]
"""


class Load:
    """Client threads posting purchases of new buyers, and refunds of earlier ones, to the current server.

    Each request carries 10 new buyers' ``Order Completed`` and the ``Order Refunded`` of every
    other buyer of this client whose entry has reached the destination since (so that each
    refund is a real change: a refund the engine sees with its purchase changes nothing). A
    refund that was not acknowledged is sent again (same messageId) with the next request.
    """

    #: New buyers a client lets wait for their entry before it posts more (refunds go on).
    MAX_WAITING = 100

    def __init__(self, base_url: str, receiver: Receiver, clients: int = 3) -> None:
        self.base_url = base_url
        self.receiver = receiver
        self.acked: list[str] = []  # buyers whose purchase was acknowledged
        self.refunded: set[str] = set()  # ... and whose refund was acknowledged
        self.refund_tried: set[str] = set()  # ... or at least sent (maybe stored, maybe not)
        self.statuses: dict[int, int] = {}
        self.refusals: list[httpx.Response] = []  # the first few 503 answers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def _run(self, client: int) -> None:
        n = 0
        owed: set[str] = set()  # this client's acknowledged buyers to refund once they have entered
        waiting: set[str] = set()  # this client's acknowledged buyers not entered yet
        while not self.stop.is_set():
            entered = {user for (user, kind), values in memberships(self.receiver).items() if kind == "track"}
            waiting -= entered
            refunds = sorted(owed & entered)
            # New buyers only while the pipeline keeps up: a backlog that grows without bound
            # would make the test wait for it rather than for the checks.
            users = [f"c{client}-{n}-{i}" for i in range(10)] if len(waiting) < self.MAX_WAITING else []
            n += 1
            if not users and not refunds:
                time.sleep(0.25)
                continue
            batch = [{"type": "track", "userId": u, "event": "Order Completed", "messageId": f"m-{u}"}
                     for u in users]
            batch += [{"type": "track", "userId": u, "event": "Order Refunded", "messageId": f"r-{u}"}
                      for u in refunds]
            with self.lock:
                self.refund_tried.update(refunds)
            try:
                response = httpx.post(self.base_url + "/v1/batch", json={"batch": batch}, auth=("web-key", ""),
                                      timeout=10)
            except httpx.HTTPError:
                time.sleep(0.1)  # the server is down: this batch was not acknowledged
                continue
            with self.lock:
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 503 and len(self.refusals) < 10:
                    self.refusals.append(response)
                if response.status_code == 200 and response.json().get("success"):
                    self.acked.extend(users)
                    self.refunded.update(refunds)
                    owed.difference_update(refunds)
                    owed.update(users[::2])
                    waiting.update(users)
            time.sleep(0.25)  # a steady load the workers keep up with on a busy 2-core machine

    def wait_acked(self, n: int, timeout: float = 60, *, refunded: int = 0) -> None:
        """Until ``n`` purchases and ``refunded`` refunds have been acknowledged in all."""
        assert wait_for(lambda: len(self.acked) >= n and len(self.refunded) >= refunded, timeout), (
            len(self.acked), len(self.refunded), self.statuses)


def memberships(receiver: Receiver) -> dict[tuple[str, str], list[bool]]:
    """Per (userId, payload type), the buyers membership values in the order they arrived."""
    out: dict[tuple[str, str], list[bool]] = {}
    for m in receiver.messages():
        if m.get("type") == "track" and m.get("event") in ("Audience Entered", "Audience Exited"):
            out.setdefault((m["userId"], "track"), []).append(m["event"] == "Audience Entered")
        elif m.get("type") == "identify" and "buyers" in m.get("traits", {}):
            out.setdefault((m["userId"], "identify"), []).append(m["traits"]["buyers"] is True)
    return out


def _missing(load: Load, receiver: Receiver) -> list[str]:
    """Changes not delivered yet: kept buyers without an entry, refunded ones entered but not exited."""
    seen = memberships(receiver)
    missing = []
    with load.lock:
        kept = set(load.acked) - load.refund_tried
        refunded = set(load.refunded)
    for user in kept:
        missing += [f"{user} {kind} entry" for kind in ("track", "identify") if True not in seen.get((user, kind), [])]
    for user in refunded:
        missing += [f"{user} {kind} exit" for kind in ("track", "identify") if False not in seen.get((user, kind), [])]
    return missing


def check_memberships(load: Load, receiver: Receiver) -> tuple[int, int]:
    """Assert the rules of the module docstring; returns (entries, exits) delivered (first deliveries)."""
    seen = memberships(receiver)
    disorder = []
    for (user, kind), values in seen.items():
        first_exit = values.index(False) if False in values else len(values)
        if True not in values[:first_exit] or True in values[first_exit:]:
            disorder.append(f"{user} {kind}: {values}")
    assert not disorder, f"{len(disorder)} profiles whose exit is not after all their entries: {disorder[:10]}"
    kept = set(load.acked) - load.refund_tried
    wrong = [f"{user} {kind}: {seen.get((user, kind))}" for user in kept for kind in ("track", "identify")
             if seen.get((user, kind), [])[:1] != [True] or False in seen[(user, kind)]]
    assert not wrong, f"{len(wrong)} acknowledged buyers without their entry, or with an exit: {wrong[:10]}"
    not_exited = [f"{u} {kind}: {seen.get((u, kind))}" for u in load.refunded for kind in ("track", "identify")
                  if False not in seen.get((u, kind), [])]
    assert not not_exited, f"{len(not_exited)} acknowledged refunds without their exit: {not_exited[:10]}"
    entries = sum(1 for values in seen.values() if True in values)
    exits = sum(1 for values in seen.values() if False in values)
    return entries, exits


def wait_delivered(load: Load, receiver: Receiver, timeout: float = 120) -> None:
    """Until no acknowledged change is missing and the stream has been still for 3 s (late messages)."""
    deadline = time.monotonic() + timeout
    count, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(receiver.requests)
        if now != count:
            count, still_since = now, time.monotonic()
        if time.monotonic() - still_since >= 3 and not _missing(load, receiver):
            return
        time.sleep(0.5)
    missing = _missing(load, receiver)
    raise AssertionError(f"{len(missing)} acknowledged changes not delivered in {timeout}s: {missing[:10]}")
