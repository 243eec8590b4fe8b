"""Snapchat Audiences: hashing vectors and the exchange against canned answers."""

from __future__ import annotations

import hashlib
import json

import pytest

from traitsync.destinations.base import LIST_GONE, Item, Response, run_exchange
from traitsync.destinations.registry import get_destination
from traitsync.destinations.vendors.snapchat_audiences import DESTINATION as SNAP
from traitsync.destinations.vendors.snapchat_audiences import SnapchatAudiencesSettings, snapchat_phone_hash

SETTINGS = SnapchatAudiencesSettings.model_validate({
    "ad_account_id": "8adc3db7-8148-4fbf-999c-8d2266369d74", "client_id": "c", "client_secret": "s",
    "refresh_token": "r", "endpoint": "https://snap.test/v1"})


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def op(action: str, *members: tuple[str, str]) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "a", "key": "k", "name": "K"},
                 "members": [{"type": t, "value": v} for t, v in members],
                 "context": {"personas": {"external_audience_id": "77"}}})


@pytest.mark.parametrize(("raw", "digits"), [
    ("+1 (650) 555-1234", "16505551234"), ("(650) 555-1234", "16505551234"),
    ("0044 20 7946 0018", "442079460018"), ("+44 020 7946 0018", "442079460018")])
def test_phone_vectors(raw: str, digits: str) -> None:
    assert snapchat_phone_hash(raw, "US") == sha(digits)
    assert snapchat_phone_hash(sha(digits).upper(), "US") == sha(digits)  # pre-hashed passes


def test_registered() -> None:
    assert get_destination("snapchat_audiences") is SNAP
    assert SNAP.list_batch == 100_000 and SNAP.list_id_before_members and SNAP.min_list_interval_s == 3600


def test_one_schema_per_request_each_identifier_once() -> None:
    outcomes, sent = run_exchange(SNAP.start([op("remove", ("email", "A@x.io"), ("email", "a@x.io "),
                                                 ("android.idfa", "CDDA802E-FB9C-47AD-9866-0794D394C912"),
                                                 ("phone", "nope"), ("user_id", "u1"))], SETTINGS),
                                  lambda _r: Response(200, body=b'{"request_status": "SUCCESS"}'))
    assert [o.kind for o in outcomes] == ["ok"]
    assert [(r.method, r.url) for r in sent] == [("DELETE", "https://snap.test/v1/segments/77/users")] * 2
    assert [json.loads(r.body) for r in sent] == [
        {"users": [{"schema": ["EMAIL_SHA256"], "data": [[sha("a@x.io")]]}]},
        {"users": [{"schema": ["MOBILE_AD_ID_SHA256"], "data": [[sha("cdda802e-fb9c-47ad-9866-0794d394c912")]]}]}]


def test_answers() -> None:
    cases = [(Response(404, body=b'{"debug_message": "Segment not found"}'), ("drop", LIST_GONE)),
             (Response(403, body=b'{"error_code": "E3002", "debug_message": "no"}'), ("auth", "E3002")),
             (Response(429, headers={"retry-after": "2"}), ("retry", "429")),
             (Response(400, body=b'{"debug_message": "bad"}'), ("drop", "400"))]
    for response, expected in cases:
        outcomes, _ = run_exchange(SNAP.start([op("add", ("email", "a@x.io"))], SETTINGS), lambda _r, a=response: a)
        assert (outcomes[0].kind, outcomes[0].code) == expected
    create = Item({"type": "audience_list", "action": "create", "audience": {"id": "a", "key": "k", "name": "Buyers"},
                   "members": [], "context": {"personas": {}}})
    outcomes, _ = run_exchange(SNAP.start([create], SETTINGS), lambda _r: Response(
        200, body=b'{"request_status": "SUCCESS", "segments": [{"segment": {"id": "123"}}]}'))
    assert outcomes[0].detail == {"external_id": "123"}
