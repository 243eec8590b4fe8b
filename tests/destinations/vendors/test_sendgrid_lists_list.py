"""SendGrid Lists: the exchange against canned answers (golden requests and outcomes)."""

from __future__ import annotations

import json

from traitsync.destinations.base import LIST_GONE, Item, Request, Response, run_exchange
from traitsync.destinations.registry import default_rate, get_destination
from traitsync.destinations.vendors.sendgrid_lists import DESTINATION as SENDGRID
from traitsync.destinations.vendors.sendgrid_lists import SendGridListsSettings, classify_answer

SETTINGS = SendGridListsSettings.model_validate({"sendgrid_api_key": "SG.k", "endpoint": "https://sg.test"})


def op(action: str, emails: list[str]) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "a", "key": "k", "name": "K"},
                 "members": [{"type": "email", "value": e} for e in emails] + [{"type": "user_id", "value": "u"}],
                 "context": {"personas": {"external_audience_id": "L1"}}})


def test_registered_with_the_engage_cap() -> None:
    assert get_destination("sendgrid_lists") is SENDGRID and default_rate(SENDGRID) == 100
    assert SENDGRID.list_batch == 30_000 and SENDGRID.list_id_before_members


def test_remove_looks_up_in_hundreds_then_deletes_ids_in_hundreds() -> None:
    emails = [f"u{i}@x.io" for i in range(150)]

    def reply(request: Request) -> Response:
        if request.url.endswith("/search/emails"):
            asked = json.loads(request.body)["emails"]
            return Response(200, body=json.dumps({"result": {e: {"contact": {"id": f"id-{e[1:-5]}"}}
                                                             for e in asked}}).encode())
        return Response(202, body=b'{"job_id": "j"}')

    outcomes, sent = run_exchange(SENDGRID.start([op("remove", emails)], SETTINGS), reply)
    assert outcomes[0].kind == "ok"
    assert [(r.method, r.url.split("?")[0]) for r in sent] == [
        ("POST", "https://sg.test/v3/marketing/contacts/search/emails")] * 2 + [
        ("DELETE", "https://sg.test/v3/marketing/lists/L1/contacts")] * 2
    assert [len(json.loads(r.body)["emails"]) for r in sent[:2]] == [100, 50]
    assert sent[2].url.endswith("contact_ids=" + ",".join(f"id-{i}" for i in range(100)))


def test_answers_never_quote_sendgrid() -> None:
    throttled = classify_answer(Response(429, headers={"x-ratelimit-reset": "1005"}), now=1000.0)
    assert (throttled.kind, throttled.retry_after) == ("retry", 5.0)
    gone = classify_answer(Response(404, body=b'{"errors": [{"message": "a@x.io not found"}]}'))
    assert (gone.kind, gone.code) == ("drop", LIST_GONE) and "a@x.io" not in (gone.message or "")
    refused = classify_answer(Response(403, body=b'{"errors": [{"message": "a@x.io"}]}'))
    assert refused.kind == "auth" and "a@x.io" not in (refused.message or "")
