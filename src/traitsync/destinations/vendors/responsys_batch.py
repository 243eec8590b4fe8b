"""Oracle Responsys Batch: the same merges through the asynchronous API, then polled.

``POST /rest/asyncApi/v1.3/lists/<list>/members`` (or ``.../listExtensions/<pet>/members``)
answers ``{requestId}`` at once; ``GET /rest/asyncApi/v1.3/requests/<requestId>`` then answers
``PROCESSING_REQUEST`` until the merge is done, and the merge's own answer (one RIID or
``MERGEFAILED`` per row) after. The exchange polls up to ``MAX_POLLS`` times (each poll takes a
slot of the rate cap, which spaces them); rows still processing after that are retried later (a
merge is an upsert, so merging them again is harmless). A purged or unknown request is retried
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from traitsync.destinations.auth import Token
from traitsync.destinations.base import Destination, Exchange, Item, Outcome, Request
from traitsync.destinations.vendors._responsys import (
    ASYNC_API,
    AUTH,
    MAPPINGS,
    MAX_RECORDS,
    ResponsysSettings,
    api_host,
    check,
    error_outcome,
    merge_groups,
    merge_request,
    record_outcomes,
)

MAX_POLLS = 6
PENDING = {"PROCESSING_REQUEST", "IN_PROGRESS", "QUEUED"}


def _poll_verdict(body: Any, count: int) -> list[Outcome] | None:
    """Outcomes once the request is done, None while it is still processing."""
    if not isinstance(body, dict):
        return [Outcome.retry(code="RESPONSYS_BAD_ANSWER")] * count
    response = body.get("response")
    status = str(body.get("status") or "").upper()
    code = str(response.get("errorCode") or "") if isinstance(response, dict) else ""
    if code in PENDING or status in PENDING:
        return None
    if code in ("RESPONSE_PURGED",) or status == "UNKNOWN":
        return [Outcome.retry(code=code or "UNKNOWN", message="the merge result is gone; merging again")] * count
    if code:
        detail = response.get("detail") if isinstance(response, dict) else None
        return [Outcome.drop(code, str(detail) if detail else None)] * count
    return record_outcomes(response, count)


def exchange(items: Sequence[Item], settings: ResponsysSettings, token: Token | None) -> Exchange:
    dropped, groups = merge_groups(items, settings)
    outcomes: dict[int, Outcome] = dict(dropped)
    host = api_host(settings, token)
    for columns, rows in groups:
        indices = tuple(i for i, _ in rows)
        accepted = yield merge_request(settings, host, columns, rows, asynchronous=True)
        data = accepted.json()
        request_id = data.get("requestId") if isinstance(data, dict) else None
        if not accepted.ok or not request_id:
            verdict = error_outcome(accepted) if not accepted.ok else Outcome.retry(
                code="RESPONSYS_NO_REQUEST_ID", message="the async merge answered without a requestId")
            outcomes.update({i: verdict for i in indices})
            continue
        got: list[Outcome] | None = None
        for _ in range(MAX_POLLS):
            polled = yield Request("GET", f"{host}{ASYNC_API}/requests/{quote(str(request_id), safe='')}",
                                   indices=indices, headers={"Accept": "application/json"}, purpose="poll")
            if not polled.ok:
                got = [error_outcome(polled)] * len(rows)
                break
            got = _poll_verdict(polled.json(), len(rows))
            if got is not None:
                break
        if got is None:
            got = [Outcome.retry(code="RESPONSYS_PENDING", message="the merge was still processing")] * len(rows)
        outcomes.update(dict(zip(indices, got, strict=True)))
    return [outcomes.get(i, Outcome.unsent()) for i in range(len(items))]


DESTINATION: Destination[ResponsysSettings] = Destination(
    name="Responsys Batch",
    slug="responsys_batch",
    settings_model=ResponsysSettings,
    exchange=exchange,
    auth=AUTH,
    default_rate=3.0,
    max_batch=MAX_RECORDS,
    event_types=frozenset({"identify", "track"}),
    default_mappings=MAPPINGS,
    check=check,
    description="Merge audience and trait columns into Responsys through the asynchronous API, polled to "
                "completion.",
)
