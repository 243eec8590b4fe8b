"""Mailchimp Lists: the exchange against canned answers (golden requests and outcomes)."""

from __future__ import annotations

import json
from typing import Any

from traitsync.destinations.base import LIST_GONE, Item, Response, run_exchange
from traitsync.destinations.vendors.mailchimp_lists import DESTINATION as MAILCHIMP
from traitsync.destinations.vendors.mailchimp_lists import MailchimpListsSettings

SETTINGS = MailchimpListsSettings.model_validate({"apiKey": "abc-us6", "listId": "L1"})


def op(action: str, *emails: str) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "aud_1", "key": "vip", "name": "VIP"},
                 "members": [{"type": "email", "value": e} for e in emails],
                 "context": {"personas": {"external_audience_id": "4001"}}})


def answer(body: Any, status: int = 200) -> Response:
    return Response(status, body=json.dumps(body).encode())


def test_host_from_the_data_center_and_segment_create() -> None:
    outcomes, sent = run_exchange(MAILCHIMP.start([Item({**op("create").message, "context": {"personas": {}}})],
                                                  SETTINGS), lambda _r: answer({"id": 4001, "type": "static"}))
    assert sent[0].url == "https://us6.api.mailchimp.com/3.0/lists/L1/segments"
    assert json.loads(sent[0].body) == {"name": "VIP", "static_segment": []}
    assert outcomes[0].detail == {"external_id": "4001"}
    assert MAILCHIMP.list_batch == 500


def test_add_subscribes_new_contacts_then_fills_the_segment() -> None:
    subscribed = answer({"new_members": [], "errors": [
        {"email_address": "a@x.io", "error": "a@x.io is already a list member", "error_code": "ERROR_CONTACT_EXISTS"},
        {"email_address": "b@x.io", "error": "b@x.io looks fake", "error_code": "ERROR_GENERIC"}]})
    replies = iter([subscribed, answer({"members_added": [{"email_address": "a@x.io"}], "errors": []})])
    outcomes, sent = run_exchange(MAILCHIMP.start([op("add", "A@x.io", "b@x.io")], SETTINGS), lambda _r: next(replies))
    assert json.loads(sent[0].body) == {"members": [{"email_address": "a@x.io", "status": "subscribed"},
                                                    {"email_address": "b@x.io", "status": "subscribed"}],
                                        "update_existing": False}
    assert (sent[1].url, json.loads(sent[1].body)) == ("https://us6.api.mailchimp.com/3.0/lists/L1/segments/4001",
                                                       {"members_to_add": ["a@x.io"]})
    assert outcomes[0].detail == {"rejected": [1], "rejected_codes": ["MAILCHIMP_REFUSED"]}


def test_remove_and_a_deleted_segment() -> None:
    outcomes, sent = run_exchange(MAILCHIMP.start([op("remove", "a@x.io")], SETTINGS),
                                  lambda _r: answer({"title": "Resource Not Found"}, 404))
    assert json.loads(sent[0].body) == {"members_to_remove": ["a@x.io"]} and outcomes[0].code == LIST_GONE
    outcomes, _ = run_exchange(MAILCHIMP.start([op("remove", "a@x.io")], SETTINGS),
                               lambda _r: answer({"title": "Too Many Requests", "detail": "a@x.io"}, 429))
    assert outcomes[0].kind == "retry" and "a@x.io" not in (outcomes[0].message or "")
