"""HubSpot Lists: the exchange against canned answers (golden requests and outcomes)."""

from __future__ import annotations

import json
from typing import Any

from traitsync.destinations.base import LIST_GONE, Item, Response, run_exchange
from traitsync.destinations.registry import get_destination
from traitsync.destinations.vendors.hubspot_lists import DESTINATION as HUBSPOT
from traitsync.destinations.vendors.hubspot_lists import HubSpotListsSettings

SETTINGS = HubSpotListsSettings.model_validate({"access_token": "pat", "endpoint": "https://hs.test"})


def op(action: str, *members: tuple[str, str], list_id: str | None = "101") -> Item:
    personas = {"external_audience_id": list_id} if list_id else {}
    return Item({"type": "audience_list", "action": action, "audience": {"id": "aud_1", "key": "vip", "name": "VIP"},
                 "members": [{"type": t, "value": v} for t, v in members], "context": {"personas": personas}})


def answer(body: Any, status: int = 200) -> Response:
    return Response(status, body=json.dumps(body).encode())


def test_registered_as_a_list_adapter() -> None:
    assert get_destination("hubspot_lists") is HUBSPOT
    assert HUBSPOT.modes == {"list"} and HUBSPOT.list_batch == 1000 and HUBSPOT.list_id_before_members


def test_create_finds_by_name_first() -> None:
    replies = iter([answer({"status": "error", "category": "OBJECT_NOT_FOUND"}, 404),
                    answer({"list": {"listId": "7", "name": "VIP"}})])
    outcomes, sent = run_exchange(HUBSPOT.start([op("create", list_id=None)], SETTINGS), lambda _r: next(replies))
    assert [(r.method, r.url) for r in sent] == [("GET", "https://hs.test/crm/v3/lists/object-type-id/0-1/name/VIP"),
                                                 ("POST", "https://hs.test/crm/v3/lists")]
    assert outcomes[0].detail == {"external_id": "7"}
    found, sent = run_exchange(HUBSPOT.start([op("create", list_id=None)], SETTINGS),
                               lambda _r: answer({"list": {"listId": "9"}}))
    assert found[0].detail == {"external_id": "9"} and len(sent) == 1


def test_add_upserts_then_adds_record_ids_and_names_refused_members_by_position() -> None:
    upserted = answer({"status": "COMPLETE", "results": [{"id": "51", "properties": {"email": "a@x.io"}}],
                       "errors": [{"category": "VALIDATION_ERROR", "context": {"ids": ["b@x.io"]}}]}, 207)
    replies = iter([upserted, answer({"recordIdsAdded": ["51"]})])
    outcomes, sent = run_exchange(HUBSPOT.start([op("add", ("email", " A@x.io"), ("email", "b@x.io"),
                                                    ("user_id", "u1"))], SETTINGS), lambda _r: next(replies))
    assert json.loads(sent[0].body)["inputs"][1] == {"idProperty": "email", "id": "b@x.io",
                                                     "properties": {"email": "b@x.io"}}
    assert json.loads(sent[1].body) == {"recordIdsToAdd": ["51"]}
    assert outcomes[0].detail == {"rejected": [1], "rejected_codes": ["HUBSPOT_REFUSED"]}


def test_a_deleted_list_is_gone_and_an_upload_without_an_id_is_refused() -> None:
    replies = iter([answer({"results": [{"id": "51", "properties": {"email": "a@x.io"}}]}),
                    answer({"category": "OBJECT_NOT_FOUND"}, 404)])
    outcomes, _ = run_exchange(HUBSPOT.start([op("remove", ("email", "a@x.io"))], SETTINGS), lambda _r: next(replies))
    assert outcomes[0].code == LIST_GONE
    outcomes, sent = run_exchange(HUBSPOT.start([op("add", ("email", "a@x.io"), list_id=None)], SETTINGS),
                                  lambda _r: answer({}))
    assert outcomes[0].code == LIST_GONE and sent == []


def test_throttle_is_retried_with_hubspots_words_not_the_body() -> None:
    throttled = answer({"status": "error", "message": "a@x.io limit", "errorType": "RATE_LIMIT"}, 429)
    outcomes, _ = run_exchange(HUBSPOT.start([op("add", ("email", "a@x.io"))], SETTINGS), lambda _r: throttled)
    assert (outcomes[0].kind, outcomes[0].code) == ("retry", "RATE_LIMIT")
    assert "a@x.io" not in (outcomes[0].message or "")
