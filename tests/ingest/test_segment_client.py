"""The official segment-analytics-python client, pointed at traitsync, with gzip on and off."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from segment.analytics.client import Client

from tests.ingest.conftest import LiveApp


@pytest.mark.parametrize("use_gzip", [False, True])
def test_official_client_sends_every_call_type_once(live: LiveApp, use_gzip: bool) -> None:
    errors: list[Exception] = []
    client = Client("web-key", host=live.base_url, gzip=use_gzip, sync_mode=True, max_retries=0,
                    on_error=lambda error, _items: errors.append(error))
    when = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    client.identify("u1", {"email": "jane@example.com", "plan": "pro"}, message_id="c-identify")
    client.track("u1", "Order Completed", {"revenue": 42.5, "currency": "USD"}, timestamp=when,
                 message_id="c-track")
    client.page("u1", "Docs", "Install", {"path": "/install"}, message_id="c-page")
    client.screen("u1", "Settings", "Profile", message_id="c-screen")
    client.group("u1", "acme", {"name": "ACME"}, message_id="c-group")
    client.alias("anon-1", "u1", message_id="c-alias")
    client.flush()
    assert errors == []
    events = {e.message_id: e for e in live.runtime.event_log.read(0, 100)}
    assert sorted(events) == ["c-alias", "c-group", "c-identify", "c-page", "c-screen", "c-track"]
    assert events["c-identify"].body["traits"] == {"email": "jane@example.com", "plan": "pro"}
    track = events["c-track"]
    assert track.event == "Order Completed"
    assert track.body["properties"] == {"revenue": 42.5, "currency": "USD"}
    assert track.body["originalTimestamp"].startswith("2025-03-01T12:00:00")
    # timestamp = receivedAt - (sentAt - originalTimestamp): the given time plus the network delay.
    assert 0 <= track.timestamp_ms - int(when.timestamp() * 1000) < 10_000
    assert track.body["context"]["library"]["name"] == "analytics-python"
    page = events["c-page"]
    assert page.event == "Page Viewed"
    assert page.properties["page_name"] == "Install"
    assert page.body["category"] == "Docs"
    assert events["c-screen"].event == "Screen Viewed"
    assert events["c-group"].body["groupId"] == "acme"
    assert events["c-alias"].body["previousId"] == "anon-1"
    assert all(e.source_id == "src_web" for e in events.values())
    # A second flush of the same message ids stores nothing new.
    client.track("u1", "Order Completed", message_id="c-track")
    client.flush()
    assert live.runtime.event_log.count() == 6
