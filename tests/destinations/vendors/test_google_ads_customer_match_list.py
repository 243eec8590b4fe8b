"""Google Ads Customer Match: the exchange against canned answers (golden requests and outcomes)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from traitsync.destinations.base import LIST_GONE, Item, Request, Response, run_exchange
from traitsync.destinations.registry import get_destination
from traitsync.destinations.vendors.google_ads_customer_match import DESTINATION as GOOGLE
from traitsync.destinations.vendors.google_ads_customer_match import GoogleAdsCustomerMatchSettings

SETTINGS = GoogleAdsCustomerMatchSettings.model_validate({
    "customer_id": "123-456-7890", "developer_token": "dev", "client_id": "c", "client_secret": "s",
    "refresh_token": "r", "endpoint": "https://ads.test/v22"})
JOB = "customers/1234567890/offlineUserDataJobs/77"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def op(action: str, *members: tuple[str, str]) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "aud_1", "key": "k", "name": "K"},
                 "members": [{"type": t, "value": v} for t, v in members],
                 "context": {"personas": {"external_audience_id": "42"}}})


def answer(body: Any, status: int = 200) -> Response:
    return Response(status, body=json.dumps(body).encode())


def partial(*failures: tuple[int, str]) -> Response:
    return answer({"partialFailureError": {"code": 3, "message": "x", "details": [{"errors": [
        {"errorCode": {"offlineUserDataJobError": code}, "message": "m",
         "location": {"fieldPathElements": [{"fieldName": "operations", "index": i}]}} for i, code in failures]}]}})


DONE = Response(200, body=json.dumps({"results": [{"offlineUserDataJob": {"resourceName": JOB,
                                                                          "status": "SUCCESS"}}]}).encode())


def test_registered_with_the_six_hour_floor() -> None:
    assert get_destination("google_ads_customer_match") is GOOGLE
    assert GOOGLE.min_list_interval_s == 21600 and GOOGLE.list_id_before_members
    assert GOOGLE.list_batch == 100_000 and GOOGLE.auth is not None


def test_token_request_is_the_refresh_token_grant() -> None:
    assert GOOGLE.auth is not None
    request = GOOGLE.auth.fetch(SETTINGS)
    assert request.url == "https://oauth2.googleapis.com/token" and not request.authorize
    assert b"grant_type=refresh_token" in request.body and b"refresh_token=r" in request.body


def test_remove_job_golden_requests() -> None:
    answers = iter([answer({"resourceName": JOB}), answer({}), answer({"name": "op"}), DONE])
    outcomes, sent = run_exchange(GOOGLE.start([op("remove", ("email", "Jane.Doe@googlemail.com"),
                                                   ("phone", "+44 20 7946 0018"), ("user_id", "u1"),
                                                   ("phone", "not a phone"))], SETTINGS),
                                  lambda _r: next(answers))
    assert [o.kind for o in outcomes] == ["ok"]
    assert [(r.method, r.url) for r in sent] == [
        ("POST", "https://ads.test/v22/customers/1234567890/offlineUserDataJobs:create"),
        ("POST", f"https://ads.test/v22/{JOB}:addOperations"), ("POST", f"https://ads.test/v22/{JOB}:run"),
        ("POST", "https://ads.test/v22/customers/1234567890/googleAds:search")]
    assert json.loads(sent[3].body) == {"query": "SELECT offline_user_data_job.resource_name,"
                                        " offline_user_data_job.status, offline_user_data_job.failure_reason"
                                        " FROM offline_user_data_job WHERE"
                                        f" offline_user_data_job.resource_name = '{JOB}'"}
    assert sent[3].delay == 2.0  # the first poll waits job_poll_initial_s
    assert json.loads(sent[1].body) == {"enablePartialFailure": True, "operations": [
        {"remove": {"userIdentifiers": [{"hashedEmail": sha("janedoe@googlemail.com")}]}},
        {"remove": {"userIdentifiers": [{"hashedPhoneNumber": sha("+442079460018")}]}}]}
    assert sent[0].headers["developer-token"] == "dev" and "login-customer-id" not in sent[0].headers


def test_transient_partial_failures_are_re_added_permanent_ones_counted() -> None:
    answers = iter([answer({"resourceName": JOB}),
                    partial((0, "CONCURRENT_MODIFICATION"), (2, "INVALID_SHA256_FORMAT")),
                    answer({}), answer({"name": "op"}), DONE])
    outcomes, sent = run_exchange(GOOGLE.start([op("add", ("email", "a@x.io"), ("email", "b@x.io"),
                                                   ("email", "c@x.io"))], SETTINGS), lambda _r: next(answers))
    assert json.loads(sent[2].body)["operations"] == [{"create": {"userIdentifiers": [{"hashedEmail": sha("a@x.io")}]}}]
    assert outcomes[0].kind == "ok"
    assert outcomes[0].detail == {"rejected": [2], "rejected_codes": ["INVALID_SHA256_FORMAT"]}  # c@x.io


def test_polls_back_off_until_the_job_is_done() -> None:
    running = answer({"results": [{"offlineUserDataJob": {"resourceName": JOB, "status": "RUNNING"}}]})
    failed = answer({"results": [{"offlineUserDataJob": {"resourceName": JOB, "status": "FAILED",
                                                         "failureReason": "PROCESSING_ERROR"}}]})
    for last, kind, code in ((DONE, "ok", None), (failed, "retry", "GOOGLE_JOB_PROCESSING_ERROR")):
        answers = iter([answer({"resourceName": JOB}), answer({}), answer({"name": "op"}), running, running, last])
        outcomes, sent = run_exchange(GOOGLE.start([op("add", ("email", "a@x.io"))], SETTINGS), lambda _r, a=answers:
                                      next(a))
        assert [r.delay for r in sent if r.purpose == "poll job"] == [2.0, 4.0, 8.0]
        assert (outcomes[0].kind, outcomes[0].code) == (kind, code)


def test_operations_that_keep_failing_retry_the_whole_operation_without_running_the_job() -> None:
    always = partial((0, "CONCURRENT_MODIFICATION"))

    def reply(request: Request) -> Response:
        return answer({"resourceName": JOB}) if request.url.endswith("Jobs:create") else always

    outcomes, sent = run_exchange(GOOGLE.start([op("add", ("email", "a@x.io"))], SETTINGS), reply)
    assert outcomes[0].kind == "retry" and not any(r.url.endswith(":run") for r in sent)


def test_error_answers() -> None:
    def failure(status: int, category: str, enum: str) -> Response:
        return answer({"error": {"code": status, "status": "X", "message": "m",
                                 "details": [{"errors": [{"errorCode": {category: enum}, "message": "m"}]}]}}, status)

    cases = [(failure(400, "databaseError", "CONCURRENT_MODIFICATION"), ("retry", "CONCURRENT_MODIFICATION")),
             (failure(400, "offlineUserDataJobError", "INVALID_USER_LIST_ID"), ("drop", LIST_GONE)),
             (failure(403, "authorizationError", "DEVELOPER_TOKEN_NOT_APPROVED"),
              ("auth", "DEVELOPER_TOKEN_NOT_APPROVED")),
             (failure(400, "requestError", "INVALID_INPUT"), ("drop", "INVALID_INPUT")),
             (answer({"error": {"code": 503, "status": "UNAVAILABLE", "message": "m"}}, 503), ("retry", "UNAVAILABLE"))]
    for response, (kind, code) in cases:
        outcomes, _ = run_exchange(GOOGLE.start([op("add", ("email", "a@x.io"))], SETTINGS), lambda _r, a=response: a)
        assert (outcomes[0].kind, outcomes[0].code) == (kind, code)


def test_create_keeps_the_list_id_and_an_upload_without_one_is_gone() -> None:
    create = Item({"type": "audience_list", "action": "create", "audience": {"id": "a", "key": "k", "name": "Buyers"},
                   "members": [], "context": {"personas": {}}})
    outcomes, sent = run_exchange(GOOGLE.start([create], SETTINGS), lambda _r: answer(
        {"results": [{"resourceName": "customers/1234567890/userLists/555"}]}))
    assert outcomes[0].detail == {"external_id": "555"}
    assert json.loads(sent[0].body)["operations"][0]["create"]["crmBasedUserList"]["uploadKeyType"] == "CONTACT_INFO"
    bare = Item({**op("add", ("email", "a@x.io")).message, "context": {"personas": {}}})
    outcomes, sent = run_exchange(GOOGLE.start([bare], SETTINGS), lambda _r: answer({}))
    assert outcomes[0].code == LIST_GONE and sent == []
