"""Per-source settings: a disabled source, and the optional per-source rate limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.ingest.conftest import LiveApp, start_live_app

CONFIG = """\
space_id: spa_test
sources:
  - id: src_limited
    write_key: limited-key
    rate_limit: {requests_per_second: 2, burst: 3}
  - id: src_off
    write_key: off-key
    enabled: false
"""


@pytest.fixture
def app(sqlite_url: str) -> Iterator[LiveApp]:
    live = start_live_app(sqlite_url, CONFIG)
    yield live
    live.close()


def test_rate_limited_source_answers_429_with_retry_after(app: LiveApp) -> None:
    answers = [httpx.post(app.base_url + "/v1/track", auth=("limited-key", ""), json={
        "userId": "u", "event": "E", "messageId": f"r{i}"}) for i in range(6)]
    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [200, 200, 200]  # the burst
    limited = [a for a in answers if a.status_code == 429]
    assert limited, statuses
    assert limited[0].json() == {"code": "too_many_requests", "message": "Source src_limited is over its rate limit"}
    assert limited[0].headers["Retry-After"] == "1"
    stored = {e.message_id for e in app.runtime.event_log.read(0, 100)}
    assert stored == {f"r{i}" for i, a in enumerate(answers) if a.status_code == 200}


def test_disabled_source_is_403_and_stores_nothing(app: LiveApp) -> None:
    response = httpx.post(app.base_url + "/v1/track", auth=("off-key", ""), json={"userId": "u", "event": "E"})
    assert response.status_code == 403
    assert response.json() == {"code": "source_disabled", "message": "Source src_off is disabled"}
    assert app.runtime.event_log.count() == 0
