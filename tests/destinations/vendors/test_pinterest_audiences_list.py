"""Pinterest Audiences: the exchange against canned answers (golden requests and outcomes)."""

from __future__ import annotations

import base64
import hashlib
import json

from traitsync.destinations.base import LIST_GONE, Item, Response, run_exchange
from traitsync.destinations.registry import get_destination
from traitsync.destinations.vendors.pinterest_audiences import DESTINATION as PINTEREST
from traitsync.destinations.vendors.pinterest_audiences import MAX_RECORDS, PinterestAudiencesSettings

SETTINGS = PinterestAudiencesSettings.model_validate({
    "ad_account_id": "549755885175", "client_id": "app", "client_secret": "sek", "refresh_token": "r",
    "endpoint": "https://pin.test/v5"})


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def op(action: str, members: list[tuple[str, str]]) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "a", "key": "k", "name": "K"},
                 "members": [{"type": t, "value": v} for t, v in members],
                 "context": {"personas": {"external_audience_id": "9"}}})


def test_registered_and_token_request_uses_basic_credentials() -> None:
    assert get_destination("pinterest_audiences") is PINTEREST and PINTEREST.list_id_before_members
    assert PINTEREST.auth is not None
    request = PINTEREST.auth.fetch(SETTINGS)
    assert request.url == "https://api.pinterest.com/v5/oauth/token"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"app:sek").decode()
    assert b"sek" not in request.body and b"grant_type=refresh_token" in request.body


def test_records_are_hashed_deduplicated_and_split() -> None:
    members = [("email", f"u{i}@x.io") for i in range(MAX_RECORDS + 1)] + [("email", " U0@X.io"), ("phone", "+1")]
    outcomes, sent = run_exchange(PINTEREST.start([op("remove", members)], SETTINGS),
                                  lambda _r: Response(200, body=b'{"id": "9"}'))
    assert outcomes[0].kind == "ok"
    bodies = [json.loads(r.body) for r in sent]
    assert [(r.method, r.url) for r in sent] == [("PATCH", "https://pin.test/v5/ad_accounts/549755885175/"
                                                           "customer_lists/9")] * 2
    assert [len(b["records"].split(",")) for b in bodies] == [MAX_RECORDS, 1]
    assert bodies[0]["operation_type"] == "REMOVE" and bodies[0]["records"].startswith(sha("u0@x.io") + ",")


def test_answers() -> None:
    cases = [(Response(404, body=b'{"code": 2601, "message": "not found"}'), ("drop", LIST_GONE)),
             (Response(403, body=b'{"code": 29, "message": "no"}'), ("auth", "PINTEREST_29")),
             (Response(429, headers={"retry-after": "1"}), ("retry", "429")),
             (Response(400, body=b'{"code": 1, "message": "bad"}'), ("drop", "PINTEREST_1"))]
    for response, expected in cases:
        outcomes, _ = run_exchange(PINTEREST.start([op("add", [("email", "a@x.io")])], SETTINGS),
                                   lambda _r, a=response: a)
        assert (outcomes[0].kind, outcomes[0].code) == expected
