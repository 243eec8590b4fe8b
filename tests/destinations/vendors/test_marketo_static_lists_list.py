"""Marketo Static Lists: the exchange against canned answers (golden requests and outcomes)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from traitsync.destinations.base import LIST_GONE, Item, Request, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.marketo_static_lists import DESTINATION as MSL
from traitsync.destinations.vendors.marketo_static_lists import MarketoStaticListsSettings

SETTINGS = MarketoStaticListsSettings.model_validate({
    "client_id": "c", "client_secret": "s/+=", "api_endpoint": "https://123-ABC-456.mktorest.com/rest",
    "folder_name": "Audiences"})
BASE = "https://123-ABC-456.mktorest.com"


def ok(result: list[dict[str, object]]) -> Response:
    return Response(200, body=json.dumps({"requestId": "r", "success": True, "result": result}).encode())


def failed(code: str) -> Response:
    return Response(200, body=json.dumps({"requestId": "r", "success": False,
                                          "errors": [{"code": code, "message": "a@x.io"}]}).encode())


def op(action: str, emails: list[str]) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "a", "key": "k", "name": "Buyers"},
                 "members": [{"type": "email", "value": e} for e in emails],
                 "context": {"personas": {"external_audience_id": "77"}}})


def test_registered_with_the_engage_cap_and_url_encoded_secret_redacted() -> None:
    assert get_destination("marketo_static_lists") is MSL and default_rate(MSL) == 5
    assert MSL.list_batch == 300 and "s%2F%2B%3D" in SETTINGS.secrets()


def test_create_finds_the_folder_and_falls_back_to_the_name_when_taken() -> None:
    create = Item({"type": "audience_list", "action": "create", "audience": {"id": "a", "key": "k", "name": "Buyers"},
                   "members": [], "context": {"personas": {}}})
    answers = iter([ok([{"id": 12, "type": "Folder"}]), failed("709"), ok([{"id": 55, "name": "Buyers"}])])
    outcomes, sent = run_exchange(MSL.start([create], SETTINGS), lambda _r: next(answers))
    assert outcomes[0].detail == {"external_id": "55"}
    assert sent[0].url == f"{BASE}/rest/asset/v1/folder/byName.json?name=Audiences&type=Folder"
    form = parse_qs(sent[1].body.decode())
    assert (form["folder"], form["name"]) == (['{"id":12,"type":"Folder"}'], ["Buyers"])
    assert sent[2].url == f"{BASE}/rest/asset/v1/staticList/byName.json?name=Buyers"


def test_add_upserts_then_adds_ids_and_counts_skips() -> None:
    def reply(request: Request) -> Response:
        if request.url.endswith("/rest/v1/leads.json"):
            return ok([{"seq": 0, "id": 5, "status": "created"}, {"seq": 1, "status": "skipped"}])
        return ok([{"id": 5, "status": "added"}])

    outcomes, sent = run_exchange(MSL.start([op("add", [" A@X.io", "b@x"])], SETTINGS), reply)
    assert json.loads(sent[0].body) == {"action": "createOrUpdate", "lookupField": "email",
                                        "input": [{"email": "a@x.io"}, {"email": "b@x"}]}
    assert (sent[1].url, json.loads(sent[1].body)) == (f"{BASE}/rest/v1/lists/77/leads.json", {"input": [{"id": 5}]})
    assert outcomes[0].kind == "ok" and outcomes[0].detail == {"skipped_members": 1}


def test_remove_looks_up_by_form_then_deletes_by_query() -> None:
    answers = iter([ok([{"id": 5, "email": "a@x.io"}, {"id": 6, "email": "b@x.io"}]), ok([])])
    outcomes, sent = run_exchange(MSL.start([op("remove", ["a@x.io", "b@x.io", "c@x.io"])], SETTINGS),
                                  lambda _r: next(answers))
    assert sent[0].url == f"{BASE}/rest/v1/leads.json?_method=GET"
    assert parse_qs(sent[0].body.decode())["filterValues"] == ["a@x.io,b@x.io,c@x.io"]
    assert (sent[1].method, sent[1].url) == ("DELETE", f"{BASE}/rest/v1/lists/77/leads.json?id=5&id=6")
    assert outcomes[0].kind == "ok"


def test_errors_never_quote_marketo() -> None:
    for code, expected in (("1013", ("drop", LIST_GONE)), ("606", ("retry", "606")), ("1003", ("drop", "1003"))):
        outcomes, _ = run_exchange(MSL.start([op("add", ["a@x.io"])], SETTINGS), lambda _r, c=code: failed(c))
        assert (outcomes[0].kind, outcomes[0].code) == expected
        assert "a@x.io" not in (outcomes[0].message or "")
