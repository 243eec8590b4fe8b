"""SFMC Lists: the exchange against canned answers (golden requests and outcomes)."""

from __future__ import annotations

import json
from typing import Any

from traitsync.destinations.auth import Token
from traitsync.destinations.base import LIST_GONE, Item, Request, Response, run_exchange
from traitsync.destinations.vendors.salesforce_marketing_cloud_lists import DESTINATION as SFMC
from traitsync.destinations.vendors.salesforce_marketing_cloud_lists import SfmcListsSettings, extension_key

SETTINGS = SfmcListsSettings.model_validate({"subdomain": "mc563885gzs27c5t9", "client_id": "c",
                                             "client_secret": "s"})
TOKEN = Token("t", extra={"rest_instance_url": "https://rest.test/"})
REST = "https://rest.test"


def op(action: str, *members: tuple[str, str], key: str = "vip") -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "aud_1", "key": key, "name": "VIP"},
                 "members": [{"type": t, "value": v} for t, v in members],
                 "context": {"personas": {"external_audience_id": "ts_vip"}}})


def answer(body: Any, status: int = 200) -> Response:
    return Response(status, body=json.dumps(body).encode())


def test_external_keys_fit_sfmcs_36_characters() -> None:
    assert extension_key(op("create").message, SETTINGS) == "ts_vip"
    long = extension_key(op("create", key="a_very_long_audience_key_that_goes_on_and_on").message, SETTINGS)
    assert len(long) == 36 and long.startswith("ts_a_very_long_audience_key")


def test_create_reuses_an_existing_data_extension_or_makes_one() -> None:
    outcomes, sent = run_exchange(SFMC.start([op("create")], SETTINGS, TOKEN), lambda _r: answer({"items": []}))
    assert [r.url for r in sent] == [f"{REST}/data/v1/customobjectdata/key/ts_vip/rowset?$pageSize=1"]
    assert outcomes[0].detail == {"external_id": "ts_vip"}
    replies = iter([answer({"message": "not found", "errorcode": 10001}, 404), answer({"key": "ts_vip"}, 201)])
    outcomes, sent = run_exchange(SFMC.start([op("create")], SETTINGS, TOKEN), lambda _r: next(replies))
    assert sent[1].url == f"{REST}/data/v1/customobjects" and json.loads(sent[1].body)["key"] == "ts_vip"
    assert outcomes[0].detail == {"external_id": "ts_vip"}


def test_rows_upserted_in_fifties_and_deleted_one_by_one() -> None:
    emails = [("email", f"u{i}@x.io") for i in range(51)]
    outcomes, sent = run_exchange(SFMC.start([op("add", *emails, ("user_id", "u1"))], SETTINGS, TOKEN),
                                  lambda r: answer(json.loads(r.body)))
    assert [len(json.loads(r.body)) for r in sent] == [50, 1] and outcomes[0].kind == "ok"
    assert json.loads(sent[1].body) == [{"keys": {"ContactKey": "u50@x.io"}, "values": {"EmailAddress": "u50@x.io"}}]

    def gone_row(request: Request) -> Response:
        return answer({"message": "Row not found", "errorcode": 10002}, 404)

    outcomes, sent = run_exchange(SFMC.start([op("remove", ("email", "a@x.io"), ("email", "b@x.io"))], SETTINGS,
                                             TOKEN), gone_row)
    assert [r.url for r in sent] == [f"{REST}/hub/v1/dataevents/key:ts_vip/rows/ContactKey:a@x.io",
                                     f"{REST}/hub/v1/dataevents/key:ts_vip/rows/ContactKey:b@x.io"]
    assert outcomes[0].kind == "ok"  # rows already gone: nothing to remove
    outcomes, _ = run_exchange(SFMC.start([op("remove", ("email", "a@x.io"))], SETTINGS, TOKEN),
                               lambda _r: answer({"message": "Data extension not found", "errorcode": 10001}, 404))
    assert outcomes[0].code == LIST_GONE


def test_transient_10006_is_retried() -> None:
    outcomes, _ = run_exchange(SFMC.start([op("add", ("email", "a@x.io"))], SETTINGS, TOKEN),
                               lambda _r: answer({"message": "Unable to save rows", "errorcode": 10006}, 400))
    assert (outcomes[0].kind, outcomes[0].code) == ("retry", "10006")
