"""Eloqua: /id discovery as the cached credential, field ids by name, search then PUT or POST."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.eloqua import COMPANY, FIELDS, PASSWORD, USER, EloquaFake, eloqua_fake
from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.harness import Harness
from traitsync.destinations.auth import Token
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.eloqua import DESTINATION as ELOQUA
from traitsync.destinations.vendors.eloqua import EloquaSettings

SETTINGS = {"company": COMPANY, "username": USER, "password": PASSWORD}
BASIC = base64.b64encode(f"{COMPANY}\\{USER}:{PASSWORD}".encode()).decode()
TOKEN = Token("site", extra={"base": "https://secure.p03.eloqua.com"})
API = "https://secure.p03.eloqua.com/api/REST/1.0"


@pytest.fixture
def fake() -> Iterator[EloquaFake]:
    with eloqua_fake() as running:
        yield running


def settings(**over: object) -> EloquaSettings:
    return EloquaSettings.model_validate({**SETTINGS, **over})


def fields_answer() -> Response:
    return Response(200, body=json.dumps({"elements": FIELDS}).encode())


def test_registered() -> None:
    assert get_destination("eloqua") is ELOQUA and default_rate(ELOQUA) == 5


def test_golden_entry_updates_the_contact_found_by_email() -> None:
    answers = iter([fields_answer(), Response(200, body=b'{"elements":[{"type":"Contact","id":"7"}],"total":1}'),
                    Response(200, body=b'{"type":"Contact","id":"7"}')])
    message = audience_identify("m1", "vip_buyers", True, email="a@x.io")
    outcomes, sent = run_exchange(ELOQUA.start([item(ELOQUA, message)], settings(), TOKEN), lambda _r: next(answers))
    assert outcomes == [Outcome.ok({"contact_id": "7"})]
    assert [(r.purpose, r.method, r.url) for r in sent] == [
        ("lookup", "GET", f"{API}/assets/contact/fields?depth=partial&count=1000"),
        ("lookup", "GET", f"{API}/data/contacts?search=emailAddress=%27a%40x.io%27&depth=minimal&count=2"),
        ("send", "PUT", f"{API}/data/contact/7")]
    assert json.loads(sent[2].body) == {"type": "Contact", "id": "7", "emailAddress": "a@x.io", "fieldValues": [
        {"type": "FieldValue", "id": "100200", "value": "true"}]}
    assert sent[2].headers["Authorization"] == f"Basic {BASIC}"


def test_golden_exit_and_trait_create_missing_contacts() -> None:
    answers = iter([fields_answer()] + [Response(200, body=b'{"elements":[]}'), Response(201, body=b'{"id":"8"}')] * 2)
    items = [item(ELOQUA, audience_track("m1", "vip_buyers", False, email="b@x.io")),
             item(ELOQUA, trait_identify("m2", "ltv_90d", 412.5, email="c@x.io", first_name="Cy"))]
    outcomes, sent = run_exchange(ELOQUA.start(items, settings(), TOKEN), lambda _r: next(answers))
    assert outcomes == [Outcome.ok({"contact_id": "8"})] * 2
    assert json.loads(sent[2].body) == {"type": "Contact", "emailAddress": "b@x.io", "fieldValues": [
        {"type": "FieldValue", "id": "100200", "value": "false"}]}
    assert json.loads(sent[4].body) == {"type": "Contact", "emailAddress": "c@x.io", "firstName": "Cy",
                                        "fieldValues": [{"type": "FieldValue", "id": "100201", "value": "412.5"}]}


def test_field_ids_skip_the_field_list_and_unknown_keys_are_dropped() -> None:
    answers = iter([Response(200, body=b'{"elements":[]}'), Response(201, body=b"{}")])
    message = audience_identify("m1", "churn_risk", True, email="a@x.io")
    _, sent = run_exchange(ELOQUA.start([item(ELOQUA, message)], settings(field_ids={"churn_risk": "100300"}), TOKEN),
                           lambda _r: next(answers))
    assert "fields" not in sent[0].url and json.loads(sent[1].body)["fieldValues"][0]["id"] == "100300"
    outcomes, sent = run_exchange(ELOQUA.start([item(ELOQUA, message)], settings(), TOKEN),
                                  lambda _r: fields_answer())
    assert len(sent) == 1 and outcomes[0].code == "UNKNOWN_FIELD"


def test_entry_exit_and_trait_arrive_as_eloqua_expects(harness: Harness, fake: EloquaFake) -> None:
    worker = harness.worker("eloqua", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="known@x.io"),
        audience_track("m2", "vip_buyers", False, email="new@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="known@x.io", user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == [] and fake.discoveries == 1
    assert fake.contacts["7"]["fields"] == {"100200": "true", "100201": "412.5"}
    created = next(c for c in fake.contacts.values() if c["emailAddress"] == "new@x.io")
    assert created["fields"] == {"100200": "false"}
    log = json.dumps(result.attempts)
    assert PASSWORD not in log and BASIC not in log


def test_a_401_rediscovers_once_and_delivers(harness: Harness, fake: EloquaFake) -> None:
    from tests.destinations.fakes.server import Answer

    worker = harness.worker("eloqua", {**SETTINGS, "endpoint": fake.fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("w", "vip_buyers", True, email="known@x.io",
                                                              user_id="w")])
    worker.drain(10)
    fake.fake.script = [Answer(401, "Not authenticated.")]  # the instance moved pods
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", False, email="known@x.io")])
    assert result.states["m1"] == "delivered" and fake.discoveries == 2
    assert [(m, n, o) for m, n, o, *_ in result.attempts if m == "m1"] == [("m1", 1, "ok")]


def test_a_throttle_is_retried_and_a_bad_email_fails_alone(harness: Harness, fake: EloquaFake) -> None:
    from tests.destinations.fakes.server import Answer

    worker = harness.worker("eloqua", {**SETTINGS, "endpoint": fake.fake.url})
    harness.enqueue(worker.destination_id, [audience_identify("w", "vip_buyers", True, email="w@x.io", user_id="w")])
    worker.drain(10)
    fake.fake.script = [Answer(429, "Too Many Requests", headers={"Retry-After": "0"})]
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", True, email="known@x.io"),
                                  audience_identify("m2", "vip_buyers", True, email="broken@", user_id="u2")])
    assert result.states["m1"] == "delivered" and result.states["m2"] == "dead"
    assert result.codes["m2"] == "ObjectValidationError"
    assert ("m1", 1, "retry", "429") in [(m, n, o, c) for m, n, o, c, _ in result.attempts]


def test_check_and_refused_credentials(fake: EloquaFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    assert check_destination(DeliveryTarget.simple("d", ELOQUA, settings(endpoint=fake.fake.url))).ok
    refused = check_destination(DeliveryTarget.simple("d", ELOQUA, settings(endpoint=fake.fake.url,
                                                                           password="wrong-pw-3")))
    assert not refused.ok and "wrong-pw-3" not in refused.verdict + json.dumps(refused.requests)


@pytest.mark.parametrize(("data", "named"), [({"company": COMPANY, "username": USER}, "password"),
                                             ({**SETTINGS, "company": "Acme\\Corp"}, "company")])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ELOQUA.parse_settings(data)
    assert named in str(caught.value) and PASSWORD not in str(caught.value)
