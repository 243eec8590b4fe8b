"""The Tracking API over a real socket on both stores: statuses, bodies and what is stored."""

from __future__ import annotations

import base64
import gzip
import io
import re
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.ingest.conftest import LiveApp
from traitsync.log.export import export_jsonl
from traitsync.spec.timestamps import format_iso_ms, parse_iso_ms

AUTH = ("web-key", "")


def post(live: LiveApp, path: str, body: Any, *, auth: Any = AUTH, headers: dict[str, str] | None = None,
         content: bytes | None = None) -> httpx.Response:
    if content is None:
        content = orjson.dumps(body)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    return httpx.post(live.base_url + path, content=content, auth=auth, headers=hdrs, timeout=10)


def stored(live: LiveApp) -> list[Any]:
    return live.runtime.event_log.read(0, 10_000)


@pytest.mark.parametrize("kind,body", [
    ("identify", {"userId": "u1", "traits": {"email": "a@example.com"}}),
    ("track", {"userId": "u1", "event": "Order Completed", "properties": {"revenue": 12.5}}),
    ("page", {"anonymousId": "a1", "name": "Home", "properties": {"path": "/"}}),
    ("screen", {"anonymousId": "a1", "name": "Settings"}),
    ("group", {"userId": "u1", "groupId": "g1", "traits": {"name": "ACME"}}),
    ("alias", {"userId": "u1", "previousId": "a1"}),
])
def test_each_call_type_is_stored_once_with_server_fields(live: LiveApp, kind: str, body: dict[str, Any]) -> None:
    body = {**body, "messageId": f"m-{kind}"}
    response = post(live, f"/v1/{kind}", body)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    [event] = stored(live)
    assert event.type == kind
    assert event.message_id == f"m-{kind}"
    assert event.source_id == "src_web"
    assert event.body["type"] == kind
    assert set(body) <= set(event.body)
    assert parse_iso_ms(event.body["receivedAt"]) == event.received_at_ms
    assert event.body["timestamp"] == event.body["receivedAt"]  # no timestamp sent: receipt time
    if kind == "page":
        assert event.event == "Page Viewed"
        assert event.properties == {"path": "/", "page_name": "Home"}


@pytest.mark.parametrize("path,body,code,message", [
    ("/v1/track", {"event": "X"}, "no_user_anon_id", "userId or anonymousId is required"),
    ("/v1/track", {"userId": 5, "event": "X"}, "id_not_string", "userId must be a non-empty string"),
    ("/v1/track", {"userId": "", "event": "X"}, "id_not_string", "userId must be a non-empty string"),
    ("/v1/track", {"userId": "u"}, "event_not_defined", "track requires an event name"),
    ("/v1/track", {"userId": "u", "event": 7}, "event_not_string", "event must be a non-empty string"),
    ("/v1/track", {"userId": "u", "event": "X", "properties": [1]}, "properties_not_object",
     "properties must be an object"),
    ("/v1/identify", {"userId": "u", "traits": "x"}, "traits_not_object", "traits must be an object"),
    ("/v1/page", {"userId": "u", "name": 3}, "name_not_string", "page name must be a non-empty string"),
    ("/v1/page", {"userId": "u", "category": ""}, "category_not_string",
     "page category must be a non-empty string"),
    ("/v1/screen", {"userId": "u", "name": ""}, "name_not_string", "screen name must be a non-empty string"),
    ("/v1/group", {"userId": "u"}, "id_required", "group requires groupId"),
    ("/v1/alias", {"userId": "u"}, "id_required", "alias requires previousId"),
    ("/v1/track", {"userId": "u", "event": "X", "context": {"device": {"advertisingId": 1}}},
     "device_advertisingid_should_be_string", "context.device.advertisingId must be a string"),
    ("/v1/track", {"userId": "u", "event": "X", "context": {"consent": {}}},
     "consent_categorypreferences_should_exist", "context.consent.categoryPreferences must exist"),
    ("/v1/track", {"userId": "u", "event": "X", "context": {"consent": {"categoryPreferences": []}}},
     "consent_categorypreferences_fields_should_be_object",
     "context.consent.categoryPreferences must be an object"),
    ("/v1/track", {"userId": "u", "event": "X", "context": {"consent": {"categoryPreferences": {"ads": 1}}}},
     "consent_categorypreferences_fields_should_be_bool",
     "context.consent.categoryPreferences.ads must be true or false"),
    ("/v1/track", {"userId": "u", "event": "X", "messageId": "m" * 101}, "message_id_too_long",
     "messageId is 101 characters; at most 100 are allowed"),
    ("/v1/track", {"userId": "u", "event": "X", "timestamp": "yesterday"}, "invalid_timestamp",
     "timestamp is not an ISO-8601 timestamp: 'yesterday'"),
])
def test_each_validation_code(live: LiveApp, path: str, body: dict[str, Any], code: str, message: str) -> None:
    response = post(live, path, body)
    assert response.status_code == 200
    assert response.json() == {"success": False, "code": code, "message": message}
    assert stored(live) == []
    [rejection] = live.runtime.event_log.recent_rejections("src_web")
    assert (rejection["code"], rejection["message"]) == (code, message)


def test_batch_keeps_good_items_and_names_the_bad_one(live: LiveApp) -> None:
    batch = [
        {"type": "track", "userId": "u1", "event": "A", "messageId": "good-1"},
        {"type": "track", "userId": "u1", "properties": {}, "messageId": "bad-1"},
        {"type": "identify", "anonymousId": "a1", "messageId": "good-2"},
    ]
    response = post(live, "/v1/batch", {"batch": batch})
    assert response.status_code == 200
    assert response.json() == {
        "success": False, "accepted": 2, "duplicates": 0, "code": "multi_user_error",
        "message": "1 of 3 messages were refused; the others were stored",
        "rejected": [{"index": 1, "code": "event_not_defined", "message": "track requires an event name"}],
    }
    assert [e.message_id for e in stored(live)] == ["good-1", "good-2"]
    [rejection] = live.runtime.event_log.recent_rejections("src_web")
    assert rejection["message_id"] == "bad-1"
    assert rejection["batch_index"] == 1


def test_batch_item_with_a_non_string_type_is_refused_alone(live: LiveApp) -> None:
    """A list or object as ``type`` used to fail the whole request with 500; it is one bad item."""
    batch = [{"type": [], "userId": "u1", "event": "A", "messageId": "bad-1"},
             {"type": "track", "userId": "u1", "event": "A", "messageId": "good-1"},
             {"type": {"x": 1}, "userId": "u1", "event": "A", "messageId": "bad-2"}]
    response = post(live, "/v1/batch", {"batch": batch})
    assert response.status_code == 200
    message = "type must be one of alias, group, identify, page, screen, track"
    assert response.json() == {
        "success": False, "accepted": 1, "duplicates": 0, "code": "multi_user_error",
        "message": "2 of 3 messages were refused; the others were stored",
        "rejected": [{"index": 0, "code": "bad_request", "message": message},
                     {"index": 2, "code": "bad_request", "message": message}]}
    assert [e.message_id for e in stored(live)] == ["good-1"]


def test_a_canonical_timestamp_is_stored_exactly_as_sent(live: LiveApp) -> None:
    """``...26.160Z`` used to be stored as ``...26.159Z`` (float rounding)."""
    body = {"userId": "u", "event": "A", "timestamp": "2039-02-22T20:18:26.160Z"}
    assert post(live, "/v1/track", body).json() == {"success": True}
    [event] = stored(live)
    assert event.timestamp_ms == 2_182_018_706_160
    assert (event.body["timestamp"], event.body["originalTimestamp"]) == ("2039-02-22T20:18:26.160Z",) * 2


def test_batch_level_context_and_integrations_merge_into_items(live: LiveApp) -> None:
    body = {"batch": [{"type": "track", "userId": "u", "event": "A", "context": {"ip": "1.2.3.4"}},
                      {"type": "track", "userId": "u", "event": "B", "integrations": {"Braze": False}}],
            "context": {"ip": "9.9.9.9", "library": {"name": "x"}}, "integrations": {"All": True}}
    assert post(live, "/v1/batch", body).status_code == 200
    first, second = stored(live)
    assert first.body["context"] == {"ip": "1.2.3.4", "library": {"name": "x"}}
    assert first.body["integrations"] == {"All": True}
    assert second.body["context"] == {"ip": "9.9.9.9", "library": {"name": "x"}}
    assert second.body["integrations"] == {"All": True, "Braze": False}


def test_empty_batch(live: LiveApp) -> None:
    response = post(live, "/v1/batch", {"batch": []})
    assert response.status_code == 200
    assert response.json() == {"success": False, "accepted": 0, "duplicates": 0, "code": "empty_batch",
                               "message": "batch is empty", "rejected": []}


def test_all_items_bad_reports_empty_batch_result(live: LiveApp) -> None:
    response = post(live, "/v1/batch", {"batch": [{"type": "track", "event": "A"}]})
    assert response.json()["code"] == "multi_user_error"
    codes = [r["code"] for r in live.runtime.event_log.recent_rejections("src_web")]
    assert sorted(codes) == ["empty_batch_result", "no_user_anon_id"]


def test_invalid_json_is_400(live: LiveApp) -> None:
    response = post(live, "/v1/track", None, content=b'{"userId": "u",')
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert response.json()["message"].startswith("Invalid JSON: ")


def test_single_call_over_32kb_is_400(live: LiveApp) -> None:
    body = {"userId": "u", "event": "X", "properties": {"blob": "x" * (32 * 1024)}}
    response = post(live, "/v1/track", body)
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request",
                               "message": "Request body is over the 32 KB limit for a single call"}


def test_batch_over_500kb_is_400(live: LiveApp) -> None:
    items = [{"type": "track", "userId": "u", "event": "X", "properties": {"b": "y" * 20_000}} for _ in range(30)]
    response = post(live, "/v1/batch", {"batch": items})
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request",
                               "message": "Request body is over the 500 KB limit for a batch"}
    assert stored(live) == []


def test_batch_over_2500_items_is_400(live: LiveApp) -> None:
    items = [{"type": "track", "userId": "u", "event": "X"} for _ in range(2501)]
    response = post(live, "/v1/batch", {"batch": items})
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request",
                               "message": "batch has 2501 items; at most 2500 are allowed per request"}


def test_item_over_32kb_inside_a_batch_is_rejected_alone(live: LiveApp) -> None:
    items = [{"type": "track", "userId": "u", "event": "Big", "properties": {"b": "y" * 33_000}},
             {"type": "track", "userId": "u", "event": "Small", "messageId": "small"}]
    response = post(live, "/v1/batch", {"batch": items})
    assert response.json()["rejected"] == [{"index": 0, "code": "event_too_large", "message": "message is over 32 KB"}]
    assert [e.message_id for e in stored(live)] == ["small"]


def test_gzip_body(live: LiveApp) -> None:
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "Zipped"}]}))
    response = post(live, "/v1/batch", None, content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert [e.event for e in stored(live)] == ["Zipped"]


def test_gzip_bomb_is_refused_without_inflating_it(live: LiveApp) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (50 * 1024 * 1024) + b"]}")
    response = post(live, "/v1/batch", None, content=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.json()["message"] == "Request body is over the 500 KB limit for a batch"


@pytest.mark.parametrize("header", [
    "Basic " + base64.b64encode(b"web-key:").decode(),
    "Basic " + base64.b64encode(b"web-key").decode(),
])
def test_basic_auth_with_and_without_colon(live: LiveApp, header: str) -> None:
    response = post(live, "/v1/track", {"userId": "u", "event": "X"}, auth=None, headers={"Authorization": header})
    assert response.status_code == 200


def test_write_key_in_body_and_never_stored(live: LiveApp) -> None:
    response = post(live, "/v1/track", {"userId": "u", "event": "X", "writeKey": "ios-key"}, auth=None)
    assert response.status_code == 200
    [event] = stored(live)
    assert event.source_id == "src_ios"
    assert "writeKey" not in event.body


@pytest.mark.parametrize("auth,headers", [
    (("wrong-key", ""), None),
    (None, None),
    (None, {"Authorization": "Bearer web-key"}),
    (None, {"Authorization": "Basic !!!notbase64"}),
])
def test_unknown_or_missing_write_key_is_401(live: LiveApp, auth: Any, headers: Any) -> None:
    response = post(live, "/v1/track", {"userId": "u", "event": "X"}, auth=auth, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": "unknown_source", "message": "Unknown or missing write key: send it as "
                               "the Basic-auth user name, or as writeKey in the body"}
    assert stored(live) == []


def test_clock_skew_correction_moves_timestamp_back(live: LiveApp) -> None:
    now = int(time.time() * 1000)
    hour = 3_600_000
    original = now + hour - 5_000  # the device clock runs one hour fast
    sent = now + hour
    response = post(live, "/v1/track", {"userId": "u", "event": "X", "timestamp": format_iso_ms(original),
                                        "sentAt": format_iso_ms(sent)})
    assert response.status_code == 200
    [event] = stored(live)
    assert event.body["originalTimestamp"] == format_iso_ms(original)
    assert event.timestamp_ms == event.received_at_ms - 5_000
    assert abs(event.timestamp_ms - (original - hour)) < 2_000


def test_batch_sent_at_applies_to_items(live: LiveApp) -> None:
    now = int(time.time() * 1000)
    body = {"sentAt": format_iso_ms(now + 60_000),
            "batch": [{"type": "track", "userId": "u", "event": "X", "timestamp": format_iso_ms(now + 50_000)}]}
    post(live, "/v1/batch", body)
    [event] = stored(live)
    assert event.timestamp_ms == event.received_at_ms - 10_000


def test_every_stored_and_exported_time_is_iso_utc_with_milliseconds(live: LiveApp) -> None:
    """Clients write times in many forms (offsets, microseconds, no fraction); the log and its export never do."""
    post(live, "/v1/track", {"userId": "u", "event": "X", "timestamp": "2025-03-01T14:00:00.123456+02:00",
                             "sentAt": "2025-03-01T12:00:05+00:00"})
    [event] = stored(live)
    assert event.body["originalTimestamp"] == "2025-03-01T12:00:00.123Z"
    assert event.body["sentAt"] == "2025-03-01T12:00:05.000Z"
    iso_ms = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    buffer = io.BytesIO()
    export_jsonl(live.runtime.event_log, buffer)
    [exported] = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    for key in ("originalTimestamp", "sentAt", "timestamp", "receivedAt"):
        assert iso_ms.match(exported[key]), (key, exported[key])


def test_same_message_id_twice_is_stored_once(live: LiveApp) -> None:
    body = {"userId": "u", "event": "X", "messageId": "dup-1"}
    assert post(live, "/v1/track", body).status_code == 200
    assert post(live, "/v1/track", body).status_code == 200
    response = post(live, "/v1/batch", {"batch": [{**body, "type": "track"}, {**body, "type": "track"}]})
    assert response.json() == {"success": True, "accepted": 0, "duplicates": 2}
    assert [e.message_id for e in stored(live)] == ["dup-1"]


def test_missing_message_id_is_assigned(live: LiveApp) -> None:
    post(live, "/v1/track", {"userId": "u", "event": "X"})
    [event] = stored(live)
    assert event.message_id.startswith("ts-") and len(event.message_id) <= 100
    assert event.body["messageId"] == event.message_id


@pytest.mark.parametrize("content_type", ["application/xml", "application/x-www-form-urlencoded", None])
def test_a_json_body_is_stored_whatever_its_content_type(live: LiveApp, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.post(live.base_url + "/v1/track", content=b'{"userId": "u", "event": "X", "messageId": "ct"}',
                          auth=AUTH, headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert [e.message_id for e in stored(live)] == ["ct"]


def test_a_gzip_body_without_its_trailer_is_refused(live: LiveApp) -> None:
    whole = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "Cut"}]}))
    response = post(live, "/v1/batch", None, content=whole[:-8], headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request", "message": "the gzip body is incomplete (it ends before "
                               "its trailer); resend the whole request"}
    assert stored(live) == []


def test_refused_requests_are_recorded_for_their_source(live: LiveApp) -> None:
    post(live, "/v1/track", None, content=b'{"userId": "u",')
    post(live, "/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "X"}] * 2501})
    post(live, "/v1/batch", {"writeKey": "ios-key", "batch": "not a list"}, auth=None)
    post(live, "/v1/track", None, content=b"not json", auth=("nobody", ""))  # no known source: metrics only
    web = live.runtime.event_log.recent_rejections("src_web")
    assert sorted(r["message"] for r in web) == [
        "Invalid JSON: unexpected end of data: line 1 column 16 (char 15)",
        "batch has 2501 items; at most 2500 are allowed per request"]
    assert all(r["code"] == "bad_request" and r["batch_index"] is None for r in web)
    [ios] = live.runtime.event_log.recent_rejections("src_ios")
    assert ios["message"] == "batch must be an array of messages"
    assert live.runtime.event_log.rejection_counts() == {"bad_request": 3}
    debugger = httpx.get(live.base_url + "/api/v1/sources/src_web/debugger",
                         headers={"Authorization": "Bearer admin-token"}).json()
    assert len(debugger["rejections"]) == 2
    text = httpx.get(live.base_url + "/metrics", headers={"Authorization": "Bearer admin-token"}).text
    assert 'traitsync_events_rejected_total{code="bad_request",source="src_web"} 2.0' in text
    assert 'traitsync_ingest_requests_total{route="/v1/track",status="400"} 2.0' in text


def test_openapi_describes_every_route(live: LiveApp) -> None:
    spec = httpx.get(live.base_url + "/openapi.json").json()
    for path in ["/v1/identify", "/v1/track", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch",
                 "/v1/import", "/healthz", "/metrics", "/api/v1/sources/{source_id}/debugger"]:
        assert path in spec["paths"], path
    assert "requestBody" in spec["paths"]["/v1/batch"]["post"]


def test_metrics_count_accepted_and_rejected_by_code(live: LiveApp) -> None:
    post(live, "/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "A"},
                                       {"type": "track", "event": "B"}]})
    text = httpx.get(live.base_url + "/metrics", headers={"Authorization": "Bearer admin-token"}).text
    assert 'traitsync_events_accepted_total{source="src_web"} 1.0' in text
    assert 'traitsync_events_rejected_total{code="no_user_anon_id",source="src_web"} 1.0' in text
    assert "traitsync_log_append_seconds_bucket" in text


def test_source_debugger_needs_the_management_token(live: LiveApp) -> None:
    post(live, "/v1/track", {"userId": "u", "event": "Seen", "messageId": "dbg-1"})
    post(live, "/v1/track", {"event": "Bad"})
    assert httpx.get(live.base_url + "/api/v1/sources/src_web/debugger").status_code == 401
    response = httpx.get(live.base_url + "/api/v1/sources/src_web/debugger",
                         headers={"Authorization": "Bearer admin-token"})
    body = response.json()
    assert [e["messageId"] for e in body["events"]] == ["dbg-1"]
    assert [r["code"] for r in body["rejections"]] == ["no_user_anon_id"]
    missing = httpx.get(live.base_url + "/api/v1/sources/nope/debugger",
                        headers={"Authorization": "Bearer admin-token"})
    assert missing.status_code == 404


def test_chunked_body_without_length_is_refused_past_the_limit(live: LiveApp) -> None:
    def chunks() -> Any:
        yield b'{"userId": "u", "event": "X", "properties": {"pad": "'
        for _ in range(400):
            yield b"x" * 1024
        yield b'"}}'

    response = httpx.post(live.base_url + "/v1/track", content=chunks(), auth=AUTH,
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json() == {"code": "bad_request",
                               "message": "Request body is over the 32 KB limit for a single call"}
    assert stored(live) == []
