"""Responsys (lists): settings and the exchange against canned answers."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from traitsync.destinations.base import LIST_GONE, Item, Request, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.responsys_lists import DESTINATION as RSYS
from traitsync.destinations.vendors.responsys_lists import ResponsysListsSettings

BASE = {"username": "u", "userPassword": "p", "baseUrl": "https://rsys.test", "profileListName": "CONTACTS"}
SETTINGS = ResponsysListsSettings.model_validate(BASE)
AUDIENCE = {"id": "a", "key": "vip-buyers", "name": "VIP"}


def test_registered_and_one_pet_per_audience() -> None:
    assert get_destination("responsys_lists") is RSYS and default_rate(RSYS) == 3 and RSYS.list_batch == 200
    with pytest.raises(ValidationError):
        ResponsysListsSettings.model_validate({**BASE, "profileExtensionTable": "X"})


def test_an_existing_pet_is_used() -> None:
    create = Item({"type": "audience_list", "action": "create", "audience": AUDIENCE, "members": [],
                   "context": {"personas": {}}})
    outcomes, sent = run_exchange(RSYS.start([create], SETTINGS), lambda _r: Response(
        400, body=b'{"errorCode": "PROFILE_EXTENSION_ALREADY_EXISTS"}'))
    assert outcomes[0].detail == {"external_id": "vip_buyers"}
    assert json.loads(sent[0].body)["fields"] == [{"fieldName": "VIP_BUYERS", "fieldType": "STR500"}]


def test_remove_merges_false_by_each_identifier_column() -> None:
    remove = Item({"type": "audience_list", "action": "remove", "audience": AUDIENCE,
                   "members": [{"type": "email", "value": "A@x.io"}, {"type": "user_id", "value": "u9"},
                               {"type": "phone", "value": "+1650"}],
                   "context": {"personas": {"external_audience_id": "vip_buyers"}}})

    def reply(request: Request) -> Response:
        rows = len(json.loads(request.body)["recordData"]["records"])
        return Response(200, body=json.dumps({"recordData": {"records": [["1"]] * rows}}).encode())

    outcomes, sent = run_exchange(RSYS.start([remove], SETTINGS), reply)
    assert outcomes[0].kind == "ok"
    bodies = [json.loads(r.body) for r in sent]
    assert [(b["matchColumnName1"], b["insertOnNoMatch"], b["recordData"]["records"]) for b in bodies] == [
        ("EMAIL_ADDRESS", False, [["a@x.io", "false"]]), ("CUSTOMER_ID", False, [["u9", "false"]])]
    assert sent[0].url == "https://rsys.test/rest/api/v1.3/lists/CONTACTS/listExtensions/vip_buyers/members"
    gone, _ = run_exchange(RSYS.start([remove], SETTINGS), lambda _r: Response(404, body=b"{}"))
    assert gone[0].code == LIST_GONE
