"""HubSpot: contacts upserted by email (batch read, then batch update / create), 207 and 400 partial failures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tests.destinations.fakes.engage_messages import audience_identify, audience_track, item, trait_identify
from tests.destinations.fakes.hubspot import TOKEN, HubSpotFake, hubspot_fake, rate_limited
from tests.destinations.harness import Harness
from traitsync.destinations.base import Outcome, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.hubspot import DESTINATION as HUBSPOT
from traitsync.destinations.vendors.hubspot import HubSpotSettings

SETTINGS = {"access_token": TOKEN}


@pytest.fixture
def fake() -> Iterator[HubSpotFake]:
    with hubspot_fake() as running:
        yield running


def test_registered_at_5_objects_per_second_2_calls_each() -> None:
    assert get_destination("hubspot") is HUBSPOT and default_rate(HUBSPOT) == 10 and HUBSPOT.max_batch == 100


def test_golden_read_then_update_and_create() -> None:
    read = {"status": "COMPLETE", "results": [{"id": "101", "properties": {"email": "a@x.io"}}],
            "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ["b@x.io"]}}]}
    answers = iter([Response(207, body=json.dumps(read).encode()), Response(200, body=b'{"status":"COMPLETE"}'),
                    Response(201, body=b'{"status":"COMPLETE"}')])
    items = [item(HUBSPOT, audience_identify("m1", "vip_buyers", True, email="A@x.io")),
             item(HUBSPOT, audience_track("m2", "vip_buyers", False, email="b@x.io", user_id="u2"))]
    outcomes, sent = run_exchange(HUBSPOT.start(items, HubSpotSettings(**SETTINGS), None), lambda _r: next(answers))
    assert outcomes == [Outcome.ok(), Outcome.ok()]
    assert [(r.purpose, r.url) for r in sent] == [
        ("lookup", "https://api.hubapi.com/crm/v3/objects/contacts/batch/read"),
        ("send", "https://api.hubapi.com/crm/v3/objects/contacts/batch/update"),
        ("send", "https://api.hubapi.com/crm/v3/objects/contacts/batch/create")]
    assert json.loads(sent[0].body) == {"idProperty": "email", "properties": ["email"],
                                        "inputs": [{"id": "A@x.io"}, {"id": "b@x.io"}]}
    assert json.loads(sent[1].body) == {"inputs": [{"id": "101", "properties": {"vip_buyers": "true"}}]}
    assert json.loads(sent[2].body) == {"inputs": [{"properties": {"email": "b@x.io", "vip_buyers": "false"}}]}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in sent)


def test_golden_trait_value_and_property_rules() -> None:
    read = {"status": "COMPLETE", "results": [{"id": "7", "properties": {"email": "a@x.io"}}]}
    answers = iter([Response(200, body=json.dumps(read).encode()), Response(200, body=b"{}")])
    message = trait_identify("m1", "Favourite_Brands", ["acme", "zeta"], email="a@x.io", ltv={"d90": 1})
    _, sent = run_exchange(HUBSPOT.start([item(HUBSPOT, message)], HubSpotSettings(**SETTINGS), None),
                           lambda _r: next(answers))
    assert json.loads(sent[1].body) == {"inputs": [{"id": "7", "properties": {
        "favourite_brands": "acme;zeta", "ltv": '{"d90":1}'}}]}


def test_entry_exit_and_trait_arrive_as_hubspot_expects(harness: Harness, fake: HubSpotFake) -> None:
    worker = harness.worker("hubspot", {**SETTINGS, "endpoint": fake.fake.url})
    result = harness.run(worker, [
        audience_identify("m1", "vip_buyers", True, email="known@x.io"),
        audience_track("m2", "vip_buyers", False, email="new@x.io", user_id="u2"),
        trait_identify("m3", "ltv_90d", 412.5, email="c@x.io", user_id="u3")])
    assert result.states == {"m1": "delivered", "m2": "delivered", "m3": "delivered"}
    assert fake.fake.violations == []
    assert fake.contacts["known@x.io"]["properties"] == {"vip_buyers": "true"}
    assert fake.contacts["new@x.io"]["properties"] == {"email": "new@x.io", "vip_buyers": "false"}
    assert fake.contacts["c@x.io"]["properties"] == {"email": "c@x.io", "ltv_90d": 412.5}
    assert TOKEN not in json.dumps(result.attempts)


def test_a_bad_property_in_a_batch_fails_only_its_message(harness: Harness, fake: HubSpotFake) -> None:
    worker = harness.worker("hubspot", {**SETTINGS, "endpoint": fake.fake.url})
    fake.contacts.update({f"u{i}@x.io": {"id": str(200 + i), "properties": {}} for i in range(3)})
    messages = [audience_identify("m0", "vip_buyers", True, email="u0@x.io", user_id="u0"),
                audience_identify("m1", "churn_risk", True, email="u1@x.io", user_id="u1"),
                audience_identify("m2", "vip_buyers", True, email="u2@x.io", user_id="u2")]
    result = harness.run(worker, messages)
    assert result.states == {"m0": "delivered", "m1": "dead", "m2": "delivered"}
    assert result.codes["m1"] == "VALIDATION_ERROR"
    sizes = [len(s.json()["inputs"]) for s in fake.fake.on("POST", "/crm/v3/objects/contacts/batch/update")]
    assert sizes == [3, 1, 1, 1]
    assert all(n == 1 for _, n, *_ in result.attempts)


def test_a_207_retries_only_the_inputs_it_names(harness: Harness, fake: HubSpotFake) -> None:
    from tests.destinations.fakes.server import Answer

    worker = harness.worker("hubspot", {**SETTINGS, "endpoint": fake.fake.url})
    fake.contacts.update({f"u{i}@x.io": {"id": str(200 + i), "properties": {}} for i in range(3)})
    original = fake.fake.routes[1].handler
    state = {"calls": 0}

    def once_busy(seen, match):  # type: ignore[no-untyped-def]
        state["calls"] += 1
        answer: Answer = original(seen, match)
        if state["calls"] == 1:
            return Answer(207, {"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [
                {"status": "error", "category": "RATE_LIMITS", "message": "busy", "context": {"ids": ["201"]}}]})
        return answer

    fake.fake.routes[1].handler = once_busy
    result = harness.run(worker, [audience_identify(f"m{i}", "vip_buyers", True, email=f"u{i}@x.io",
                                                    user_id=f"u{i}") for i in range(3)])
    assert set(result.states.values()) == {"delivered"}
    assert [(mid, n) for mid, n, *_ in result.attempts if n > 1] == [("m1", 2)]
    updates = [[i["id"] for i in s.json()["inputs"]] for s in fake.fake.on("POST", "/crm/v3/objects/contacts/batch/up")]
    assert updates == [["200", "201", "202"], ["201"]]


def test_a_429_slows_down_and_loses_nothing(harness: Harness, fake: HubSpotFake) -> None:
    worker = harness.worker("hubspot", {**SETTINGS, "endpoint": fake.fake.url})
    fake.fake.script = [rate_limited()]
    result = harness.run(worker, [audience_identify("m1", "vip_buyers", True, email="known@x.io")])
    assert result.states == {"m1": "delivered"}
    assert [(n, o, c) for _, n, o, c, _ in result.attempts] == [(1, "retry", "429"), (2, "ok", None)]
    assert fake.contacts["known@x.io"]["properties"] == {"vip_buyers": "true"}


def test_a_wrong_token_is_an_auth_failure(harness: Harness, fake: HubSpotFake) -> None:
    worker = harness.worker("hubspot", {"access_token": "pat-na1-wrong-0001", "endpoint": fake.fake.url},
                            auth_pause_s=60)
    result = harness.run(worker, [audience_identify("m1", "vip", True, email="a@x.io")], include_retries=False)
    assert result.codes == {"m1": "401"} and worker.paused
    assert "pat-na1-wrong-0001" not in json.dumps(result.attempts)


def test_check(fake: HubSpotFake) -> None:
    from traitsync.delivery.check import check_destination
    from traitsync.delivery.target import DeliveryTarget

    settings = HubSpotSettings(access_token=TOKEN, endpoint=fake.fake.url)  # type: ignore[arg-type]
    assert check_destination(DeliveryTarget.simple("d", HUBSPOT, settings)).ok


@pytest.mark.parametrize(("data", "named"), [({}, "access_token"), ({"access_token": "  "}, "access_token"),
                                             ({"apiKey": "k", "access_token": TOKEN}, "apiKey")])
def test_bad_settings_name_the_setting(data: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HUBSPOT.parse_settings(data)
    assert named in str(caught.value) and TOKEN not in str(caught.value)


def test_a_message_without_email_is_dropped() -> None:
    outcomes, sent = run_exchange(HUBSPOT.start([item(HUBSPOT, audience_identify("m", "k", True))],
                                                HubSpotSettings(**SETTINGS), None), lambda _r: Response(500))
    assert sent == [] and outcomes[0].code == "MISSING_EMAIL"
