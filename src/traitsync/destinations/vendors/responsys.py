"""Oracle Responsys: profile list members (or PET rows) merged with the synchronous API.

Each batch becomes ``POST /rest/api/v1.3/lists/<profileListName>/members {recordData,
mergeRule}`` (or ``.../listExtensions/<profileExtensionTable>/members``) with up to 200 rows; the
answer has one record per row: its RIID, or ``MERGEFAILED: <reason>`` for a row that failed alone.
Shared parts (login, raw-token header, bodies, verdicts) are in ``_responsys``.
"""

from __future__ import annotations

from collections.abc import Sequence

from traitsync.destinations.auth import Token
from traitsync.destinations.base import Destination, Exchange, Item, Outcome
from traitsync.destinations.vendors._responsys import (
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


def exchange(items: Sequence[Item], settings: ResponsysSettings, token: Token | None) -> Exchange:
    dropped, groups = merge_groups(items, settings)
    outcomes: dict[int, Outcome] = dict(dropped)
    host = api_host(settings, token)
    for columns, rows in groups:
        response = yield merge_request(settings, host, columns, rows, asynchronous=False)
        got = record_outcomes(response.json(), len(rows)) if response.ok else [error_outcome(response)] * len(rows)
        for (i, _), outcome in zip(rows, got, strict=True):
            outcomes[i] = outcome
    return [outcomes.get(i, Outcome.unsent()) for i in range(len(items))]


DESTINATION: Destination[ResponsysSettings] = Destination(
    name="Responsys",
    slug="responsys",
    settings_model=ResponsysSettings,
    exchange=exchange,
    auth=AUTH,
    default_rate=3.0,
    max_batch=MAX_RECORDS,
    timeout_s=30.0,
    event_types=frozenset({"identify", "track"}),
    default_mappings=MAPPINGS,
    check=check,
    description="Merge audience and trait columns into a Responsys profile list or profile extension table.",
)
