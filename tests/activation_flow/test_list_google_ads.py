"""Google Ads Customer Match against a local fake of the Google Ads API, through activation and delivery."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow, config_text
from tests.destinations.fakes.google_ads import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    DEVELOPER_TOKEN,
    REFRESH_TOKEN,
    GoogleAdsFake,
    concurrent_modification,
    google_ads_fake,
    settings_yaml,
)
from tests.destinations.fakes.server import Answer
from traitsync.activation.config import validate_destinations_section
from traitsync.activation.routes import debug_entry
from traitsync.config import load_config_text
from traitsync.definitions import load_definitions
from traitsync.delivery.overview import recent_messages


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def google() -> Iterator[GoogleAdsFake]:
    fake = google_ads_fake()
    yield fake
    fake.stop()


def destination(fake: GoogleAdsFake, schedule: str = "") -> str:
    return f"""\
  - id: dst_gads
    kind: google_ads_customer_match
    settings: {settings_yaml(fake, login_customer_id='"111-222-3333"')}
    min_audience_size: 1   # a handful of test members (Google's own minimum, 100, is tested apart)
{schedule}    connections:
      - computation: {AUDIENCE}
        id_sync: {{email: all, phone: all}}   # phone is a custom identifier: sent only with ID Sync
"""


def member(flow: Flow, n: int, *, email: str | None = None, phone: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    if phone:
        flow.identifier(f"p{n}", "phone", phone)
    flow.result(f"p{n}", AUDIENCE, True)


def operations(google: GoogleAdsFake) -> list[tuple[str, str]]:
    """Every (create|remove, hash) sent in addOperations, in order."""
    out = []
    for seen in google.fake.on("POST", "/v22/customers/1234567890/offlineUserDataJobs/"):
        if seen.path.endswith(":addOperations"):
            for op in seen.json()["operations"]:
                for kind, data in op.items():
                    out.extend((kind, next(iter(i.values()))) for i in data["userIdentifiers"])
    return out


def no_plain_pii(flow: Flow, google: GoogleAdsFake, plain: tuple[str, ...]) -> None:
    every_body = " ".join(r.body.decode() for r in google.fake.requests)
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_gads")])
    conn.close()
    for text in plain:
        assert text not in every_body and text not in debugger, text
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, DEVELOPER_TOKEN):
        assert secret not in debugger


def test_first_sync_creates_the_list_then_each_change_is_one_job(flow_factory: Any, google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    member(flow, 1, email=" Ada.Lovelace@GMail.com ")
    member(flow, 2, phone="(650) 555-1234")
    member(flow, 3)  # only a user_id: a CONTACT_INFO list cannot take it
    flow.sync_lists("dst_gads")  # creates the list alone: jobs need its id
    created = google.fake.on("POST", "/v22/customers/1234567890/userLists:mutate")
    assert [r.json()["operations"][0]["create"]["name"] for r in created] == ["First Time Shopper"]
    assert created[0].header("login-customer-id") == "1112223333"
    assert created[0].header("developer-token") == DEVELOPER_TOKEN
    assert google.fake.on("POST", "/v22/customers/1234567890/offlineUserDataJobs") == []
    flow.sync_lists("dst_gads")  # the id is confirmed: every member goes up in one job
    jobs = google.fake.on("POST", "/v22/customers/1234567890/offlineUserDataJobs:create")
    assert [j.json()["job"]["customerMatchUserListMetadata"]["userList"] for j in jobs] == [
        "customers/1234567890/userLists/9001"]
    adds = [r for r in google.fake.requests if r.path.endswith(":addOperations")]
    assert all(r.json()["enablePartialFailure"] is True for r in adds)
    assert sorted(operations(google)) == sorted([("create", sha("adalovelace@gmail.com")),  # gmail dots dropped
                                                 ("create", sha("+16505551234"))])
    assert [r.path for r in google.fake.requests if r.path.endswith(":run")] == [
        "/v22/customers/1234567890/offlineUserDataJobs/5001:run"]
    assert google.members("9001") == {sha("adalovelace@gmail.com"), sha("+16505551234")}
    # A later sync sends exactly the removes and adds since the previous one, each as a job.
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, email="grace@example.com")
    flow.sync_lists("dst_gads")
    assert operations(google)[2:] == [("remove", sha("+16505551234")), ("create", sha("grace@example.com"))]
    assert google.members("9001") == {sha("adalovelace@gmail.com"), sha("grace@example.com")}
    assert len(google.fake.on("POST", "/v22/customers/1234567890/offlineUserDataJobs:create")) == 3
    flow.sync_lists("dst_gads")  # nothing changed: nothing sent
    assert len(operations(google)) == 4
    assert google.tokens_issued == 1  # the refresh-token grant once; delivery caches the access token
    assert google.fake.violations == []
    no_plain_pii(flow, google, ("lovelace", "Lovelace", "6505551234", "650) 555", "grace@"))


def test_partial_failures_re_add_transient_operations_and_lose_nothing(flow_factory: Any,
                                                                      google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    for n in range(5):
        member(flow, n, email=f"user{n}@example.com")
    flow.sync_lists("dst_gads")
    # Operations 1 and 3 of the first addOperations fail: another job touched the list.
    google.fail_ops = {1: "CONCURRENT_MODIFICATION", 3: "CONCURRENT_MODIFICATION"}
    flow.sync_lists("dst_gads")
    adds = [r for r in google.fake.requests if r.path.endswith(":addOperations")]
    assert [len(r.json()["operations"]) for r in adds] == [5, 2]  # only the failed two went again
    assert google.members("9001") == {sha(f"user{n}@example.com") for n in range(5)}
    assert flow.rows("SELECT COUNT(*) FROM activation_list_members") == [(5,)]
    assert google.fake.violations == []


def test_a_permanently_rejected_operation_does_not_fail_the_others(flow_factory: Any,
                                                                   google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    for n in range(3):
        member(flow, n, email=f"user{n}@example.com")
    flow.sync_lists("dst_gads")
    google.fail_ops = {0: "INVALID_SHA256_FORMAT"}
    flow.sync_lists("dst_gads")
    assert len(google.members("9001")) == 2  # the job ran with the two good operations
    [(state, result)] = flow.rows("SELECT state, result FROM delivery_outbox WHERE id = 2")
    assert state == "delivered"
    # The outcome names the rejected member by position (never by value): user0, the first operation.
    assert json.loads(result) == {"rejected": [0], "rejected_codes": ["INVALID_SHA256_FORMAT"]}
    held = flow.rows("SELECT id_value FROM activation_list_members ORDER BY id_value")
    assert [h[0] for h in held] == ["user1@example.com", "user2@example.com"]  # user0 is not on the list
    flow.sync_lists("dst_gads")  # so the next sync sends exactly that member again
    assert operations(google)[-1:] == [("create", sha("user0@example.com"))]
    assert len(google.members("9001")) == 3


def test_a_job_is_polled_with_backoff_until_google_says_it_is_done(flow_factory: Any,
                                                                    google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_gads")
    google.running_polls = 3
    flow.sync_lists("dst_gads")
    job = "customers/1234567890/offlineUserDataJobs/5001"
    assert google.polls == [(job, "RUNNING")] * 3 + [(job, "SUCCESS")]
    [run] = [i for i, r in enumerate(google.fake.requests) if r.path.endswith(":run")]
    searches = [r for r in google.fake.requests[run + 1:] if r.path.endswith("googleAds:search")]
    assert len(searches) == 4 and all(f"offline_user_data_job.resource_name = '{job}'" in r.json()["query"]
                                      for r in searches)
    [attempt] = [json.loads(r[0]) for r in flow.rows("SELECT requests FROM delivery_attempts ORDER BY id")[-1:]]
    assert [r["purpose"] for r in attempt] == ["create job", "add members", "run job", *["poll job"] * 4]
    assert google.members("9001") == {sha("ada@example.com")}
    assert google.fake.violations == []


def test_a_failed_job_is_retried_as_a_new_job(flow_factory: Any, google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_gads")
    google.fail_next_job = "PROCESSING_ERROR"
    flow.sync_lists("dst_gads")
    statuses = [status for _, status in google.polls if status != "RUNNING"]
    assert statuses == ["FAILED", "SUCCESS"]
    assert flow.rows("SELECT code FROM delivery_attempts ORDER BY id")[-2:] == [("GOOGLE_JOB_PROCESSING_ERROR",),
                                                                               (None,)]
    assert google.members("9001") == {sha("ada@example.com")}


def test_a_job_still_running_after_the_wait_is_left_to_google(flow_factory: Any, google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google).replace("job_poll_max_s: 0.04", "job_poll_max_s: 0.04, job_wait_s: 0.05"))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_gads")
    google.running_polls = 100
    flow.sync_lists("dst_gads")
    assert len(google.polls) == 2  # after waits of 0.01 and 0.02 s; one more (0.04 s) would pass 0.05 s
    [(state, result)] = flow.rows("SELECT state, result FROM delivery_outbox WHERE id = 2")
    assert (state, json.loads(result)) == ("delivered", {"job_status": "RUNNING"})
    assert flow.rows("SELECT COUNT(*) FROM activation_list_members") == [(1,)]


def test_concurrent_modification_and_throttles_are_retried(flow_factory: Any, google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_gads")
    google.fake.script.extend([concurrent_modification(),  # the job create
                               Answer(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                                      "message": "Too many requests"}}, {"Retry-After": "0"})])
    flow.sync_lists("dst_gads")
    assert google.members("9001") == {sha("ada@example.com")}
    assert flow.rows("SELECT state, attempts FROM delivery_outbox ORDER BY id") == [("delivered", 1),
                                                                                    ("delivered", 3)]


def test_an_expired_token_is_refreshed(flow_factory: Any, google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_gads")
    google.fake.script.append(Answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                     "message": "Request had invalid authentication credentials."}}))
    flow.sync_lists("dst_gads")
    assert google.tokens_issued == 2
    assert google.members("9001") == {sha("ada@example.com")}


def test_a_list_deleted_at_google_is_created_again(flow_factory: Any, google: GoogleAdsFake) -> None:
    flow = flow_factory(destination(google))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_gads")
    flow.sync_lists("dst_gads")
    del google.lists["9001"]  # removed in the Google Ads UI
    member(flow, 2, email="grace@example.com")
    flow.sync_lists("dst_gads")  # the job names a list Google no longer has: dead with LIST_NOT_FOUND
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_gads")  # recreate
    flow.sync_lists("dst_gads")  # and upload every member to the new list
    assert len(google.fake.on("POST", "/v22/customers/1234567890/userLists:mutate")) == 2
    assert google.members("9002") == {sha("ada@example.com"), sha("grace@example.com")}


def test_the_schedule_floor_is_six_hours(tmp_path: Path, google: GoogleAdsFake) -> None:
    path = tmp_path / "traitsync.yaml"
    text = config_text(destination(google, schedule="    schedule: {every: 1h}\n"))
    path.write_text(text)
    loaded = load_config_text(text, file=str(path))
    lines = validate_destinations_section(loaded, load_definitions(loaded.document))
    assert lines[1].startswith("  dst_gads (google_ads_customer_match, list, 5 req/s, every 6h"
                               " (schedule 1h raised to the Google Ads Customer Match floor))")
