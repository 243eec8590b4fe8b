"""Salesforce: refresh-token OAuth, instance_url from the token answer, SOQL lookup then update or create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import (
    audience_identify,
    audience_track,
    item,
    trait_identify,
)
from tests.destinations.fakes.salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    SalesforceFake,
    salesforce_fake,
    sf_error,
)
from tests.destinations.harness import Harness
from traitsync.delivery.backoff import Backoff
from traitsync.destinations.auth import Token
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.salesforce import DESTINATION as SALESFORCE
from traitsync.destinations.vendors.salesforce import SalesforceSettings, field_name, soql_literal

SETTINGS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}
TOKEN = Token("tok", extra={"instance_url": "https://acme.my.salesforce.com"})
BASE = "https://acme.my.salesforce.com/services/data/v62.0"
SHORT = Backoff(base=0.01, cap=0.05, max_attempts=5, give_up_after=0.2, jitter=False)


@pytest.fixture
def fake() -> Iterator[SalesforceFake]:
    with salesforce_fake() as running:
        yield running


def settings(**over: object) -> SalesforceSettings:
    return SalesforceSettings.model_validate({**SETTINGS, **over})


def soql(url: str) -> str:
    return parse_qs(urlparse(url).query)["q"][0]


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("salesforce") is SALESFORCE and default_rate(SALESFORCE) == 5


def test_golden_audience_entry_updates_the_lead_found_by_soql() -> None:
    answers = iter([Response(200, body=b'{"totalSize":1,"done":true,"records":[{"Id":"00Q1"}]}'), Response(204)])
    message = audience_identify("m1", "vip_buyers", True, email="o'hara@x.io")
    outcomes, sent = run_exchange(SALESFORCE.start([item(SALESFORCE, message)], settings(), TOKEN),
                                  lambda _r: next(answers))
    assert outcomes == [Outcome.ok({"id": "00Q1"})]
    assert [(r.purpose, r.method, r.url.split("?")[0]) for r in sent] == [
        ("lookup", "GET", f"{BASE}/query"), ("send", "PATCH", f"{BASE}/sobjects/Lead/00Q1")]
    assert soql(sent[0].url) == ("SELECT Id FROM Lead WHERE Email = 'o\\'hara@x.io' "
                                 "ORDER BY LastModifiedDate DESC LIMIT 1")
    assert json.loads(sent[1].body) == {"vip_buyers__c": True}


def test_golden_exit_track_and_a_trait_create_a_missing_lead() -> None:
    answers = iter([Response(200, body=b'{"totalSize":0,"done":true,"records":[]}'),
                    Response(201, body=b'{"id":"00Q9","success":true,"errors":[]}')] * 2)
    items = [item(SALESFORCE, audience_track("m1", "vip_buyers", False, email="a@x.io")),
             item(SALESFORCE, trait_identify("m2", "ltv_90d", 412.5, email="b@x.io", first_name="Bo"),
                  traits={"last_name": "Diaz", "company": "Diaz & Co"})]
    outcomes, sent = run_exchange(SALESFORCE.start(items, settings(), TOKEN), lambda _r: next(answers))
    assert outcomes == [Outcome.ok({"id": "00Q9"})] * 2
    assert [(r.method, r.url) for r in sent[1::2]] == [("POST", f"{BASE}/sobjects/Lead")] * 2
    assert json.loads(sent[1].body) == {"Email": "a@x.io", "LastName": "[not provided]",
                                        "Company": "[not provided]", "vip_buyers__c": False}
    assert json.loads(sent[3].body) == {"Email": "b@x.io", "LastName": "Diaz", "Company": "Diaz & Co",
                                        "ltv_90d__c": 412.5, "FirstName": "Bo"}


def test_contacts_need_no_company() -> None:
    answers = iter([Response(200, body=b'{"records":[]}'), Response(201, body=b'{"id":"003X"}')])
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    _, sent = run_exchange(SALESFORCE.start([item(SALESFORCE, message)], settings(sobject="Contact"), TOKEN),
                           lambda _r: next(answers))
    assert "FROM Contact" in soql(sent[0].url) and sent[1].url == f"{BASE}/sobjects/Contact"
    assert json.loads(sent[1].body) == {"Email": "a@x.io", "LastName": "[not provided]", "vip_buyers__c": True}


def test_field_names_and_soql_escaping() -> None:
    assert field_name("vip_buyers") == "vip_buyers__c" and field_name("Score__c") == "Score__c"
    assert field_name("2024 buyers!") == "X2024_buyers__c" and field_name("first_name") == "FirstName"
    assert soql_literal("a\\b'c") == "'a\\\\b\\'c'"


def test_error_codes_decide_retry_or_drop() -> None:
    def outcome(status: int, code: str) -> Outcome:
        body = json.dumps([{"message": "m", "errorCode": code}]).encode()
        return run_exchange(SALESFORCE.start([item(SALESFORCE, audience_identify("m", "k", True, email="a@x.io"))],
                                             settings(), TOKEN), lambda _r: Response(status, body=body))[0][0]
    assert outcome(403, "REQUEST_LIMIT_EXCEEDED") == Outcome.retry(3600.0, "REQUEST_LIMIT_EXCEEDED", "m")
    assert outcome(400, "UNABLE_TO_LOCK_ROW").kind == "retry"
    assert outcome(400, "INVALID_FIELD") == Outcome.drop("INVALID_FIELD", "m")
    assert outcome(401, "INVALID_SESSION_ID").kind == "auth"
    assert outcome(503, "SERVER_UNAVAILABLE").kind == "retry"


def test_entry_exit_and_trait_arrive_at_the_instance_the_token_named(harness: Harness, fake: SalesforceFake) -> None:
    worker = harness.worker("salesforce", {**SETTINGS, "endpoint": fake.login.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="known@x.io"),
        audience_track("m2", "vip_buyers", False, email="new@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="known@x.io", user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.violations == [] and fake.issued == 1
    assert fake.records["00Q000000000001"] == {"Email": "known@x.io", "vip_buyers__c": True, "ltv_90d__c": 412.5}
    assert {"Email": "new@x.io", "LastName": "[not provided]", "Company": "[not provided]",
            "vip_buyers__c": False} in fake.records.values()
    assert len(fake.org.requests) == 6  # a lookup and a write per message, all at the org's instance_url
    log = json.dumps(result.attempts)
    assert CLIENT_SECRET not in log and REFRESH_TOKEN not in log and "sf-token" not in log


def test_an_expired_session_is_refreshed_once_and_the_message_delivered(harness: Harness,
                                                                       fake: SalesforceFake) -> None:
    worker = harness.worker("salesforce", {**SETTINGS, "endpoint": fake.login.url})
    harness.enqueue(worker.destination_id, [audience_identify("m1", "vip_buyers", True, email="known@x.io")])
    worker.drain(10)
    fake.live = "revoked"  # the session timed out: the next call answers 401 INVALID_SESSION_ID
    result = harness.run(worker, [audience_identify("m2", "vip_buyers", False, email="known@x.io", user_id="u2")])
    assert result.states == {"m1": "delivered", "m2": "delivered"} and fake.issued == 2
    second = json.loads(result.attempts[1][4] or "[]")
    assert [(r["purpose"], r["status"]) for r in second] == [("lookup", 401), ("token", 200), ("lookup", 200),
                                                              ("send", 204)]
    assert fake.records["00Q000000000001"]["vip_buyers__c"] is False
    assert REFRESH_TOKEN not in json.dumps(result.attempts) and fake.violations == []


def test_the_daily_limit_is_retried_and_nothing_is_lost(harness: Harness, fake: SalesforceFake) -> None:
    worker = harness.worker("salesforce", {**SETTINGS, "endpoint": fake.login.url}, backoff=SHORT)
    fake.org.script = [sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")]
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", True, email="known@x.io")])
    assert result.states == {"m1": "delivered"}
    assert [(n, outcome, code) for _, n, outcome, code, _ in result.attempts] == [
        (1, "retry", "REQUEST_LIMIT_EXCEEDED"), (2, "ok", None)]
    assert fake.records["00Q000000000001"]["vip_buyers__c"] is True


def test_one_locked_row_is_retried_alone(harness: Harness, fake: SalesforceFake) -> None:
    worker = harness.worker("salesforce", {**SETTINGS, "endpoint": fake.login.url})
    # Warm the token, then fail exactly the second message's update.
    harness.enqueue(worker.destination_id, [audience_identify("w", "vip_buyers", True, email="w@x.io", user_id="w")])
    worker.drain(10)
    fake.records.update({f"00Q10000000000{i}": {"Email": f"u{i}@x.io"} for i in range(3)})
    original = fake.org.routes[1].handler
    calls: list[str] = []

    def flaky(seen, match):  # type: ignore[no-untyped-def]
        calls.append(match.group(2))
        if match.group(2) == "00Q100000000001" and calls.count(match.group(2)) == 1:
            return sf_error(400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
        return original(seen, match)

    fake.org.routes[1].handler = flaky
    result = harness.run(worker, [audience_identify(f"m{i}", "vip_buyers", True, email=f"u{i}@x.io",
                                                    user_id=f"u{i}") for i in range(3)])
    assert set(result.states.values()) == {"delivered"}
    assert sorted(calls) == ["00Q100000000000", "00Q100000000001", "00Q100000000001", "00Q100000000002"]
    assert [(mid, n) for mid, n, *_ in result.attempts if n > 1] == [("m1", 2)]


def test_a_missing_custom_field_is_dropped_with_its_code(harness: Harness, fake: SalesforceFake) -> None:
    worker = harness.worker("salesforce", {**SETTINGS, "endpoint": fake.login.url})
    result = harness.run(worker, [audience_identify("m1", "churn_risk", True, email="known@x.io")])
    assert result.states == {"m1": "dead"} and result.codes == {"m1": "INVALID_FIELD"}


def test_check_reads_limits(fake: SalesforceFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    assert check_destination(DeliveryTarget.simple("d", SALESFORCE, settings(endpoint=fake.login.url))).ok
    refused = check_destination(DeliveryTarget.simple("d", SALESFORCE, settings(endpoint=fake.login.url,
                                                                               refresh_token="stale-rt-1")))
    assert not refused.ok and "stale-rt-1" not in refused.verdict + json.dumps(refused.requests)


@pytest.mark.parametrize(("data", "named"), [
    ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "refresh_token"),
    ({**SETTINGS, "instanceUrl": "acme.my.salesforce.com"}, "instanceUrl"),
    ({**SETTINGS, "sobject": "Account"}, "sobject"),
    ({**SETTINGS, "api_version": "62"}, "api_version"),
])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SALESFORCE.parse_settings(data)
    assert named in str(caught.value) and CLIENT_SECRET not in str(caught.value)


def test_sandbox_authenticates_at_test_salesforce_com() -> None:
    assert SALESFORCE.auth is not None
    assert SALESFORCE.auth.fetch(settings(isSandbox=True)).url == "https://test.salesforce.com/services/oauth2/token"
    assert SALESFORCE.auth.fetch(settings()).url == "https://login.salesforce.com/services/oauth2/token"


def test_the_api_host_falls_back_to_instance_url_and_is_never_guessed() -> None:
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    outcomes, sent = run_exchange(SALESFORCE.start([item(SALESFORCE, message)], settings(), Token("t")),
                                  lambda _r: Response(500))
    assert sent == [] and outcomes == [Outcome.auth("NO_INSTANCE_URL", "the token answer had no instance_url; "
                                                                       "set instanceUrl")]
    _, sent = run_exchange(SALESFORCE.start([item(SALESFORCE, message)],
                                            settings(instanceUrl="https://acme.my.salesforce.com"), Token("t")),
                           lambda _r: Response(500))
    assert sent[0].url.startswith(f"{BASE}/query?q=")
