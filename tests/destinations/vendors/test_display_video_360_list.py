"""Google Display & Video 360: the exchange against canned answers."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from traitsync.destinations.base import LIST_GONE, Item, Response, run_exchange
from traitsync.destinations.registry import get_destination
from traitsync.destinations.vendors.display_video_360 import DESTINATION as DV360
from traitsync.destinations.vendors.display_video_360 import MAX_MEMBERS, DisplayVideo360Settings

BASE = {"advertiser_id": "42", "client_id": "c", "client_secret": "s", "refresh_token": "r",
        "ad_user_data_consent": "CONSENT_STATUS_GRANTED", "ad_personalization_consent": "CONSENT_STATUS_GRANTED"}
SETTINGS = DisplayVideo360Settings.model_validate({**BASE, "endpoint": "https://dv.test/v4"})


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def op(action: str, members: list[tuple[str, str]]) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "a", "key": "k", "name": "K"},
                 "members": [{"type": t, "value": v} for t, v in members],
                 "context": {"personas": {"external_audience_id": "99"}}})


def test_registered_and_consent_must_be_chosen() -> None:
    assert get_destination("display_video_360") is DV360 and DV360.min_list_interval_s == 21600
    with pytest.raises(ValidationError):
        DisplayVideo360Settings.model_validate({k: v for k, v in BASE.items() if k != "ad_user_data_consent"})


def test_members_split_per_request_and_answers() -> None:
    members = [("email", f"U{i}@x.io") for i in range(MAX_MEMBERS + 2)] + [("phone", "garbage"), ("user_id", "u")]
    outcomes, sent = run_exchange(DV360.start([op("remove", members)], SETTINGS), lambda _r: Response(200, body=b"{}"))
    assert outcomes[0].kind == "ok"
    assert [len(json.loads(r.body)["removedContactInfoList"]["contactInfos"]) for r in sent] == [MAX_MEMBERS, 2]
    assert json.loads(sent[0].body)["removedContactInfoList"]["contactInfos"][0] == {"hashedEmails": [sha("u0@x.io")]}
    assert sent[0].url == "https://dv.test/v4/firstPartyAndPartnerAudiences/99:editCustomerMatchMembers"
    for status, expected in ((404, ("drop", LIST_GONE)), (429, ("retry", "RESOURCE_EXHAUSTED")),
                             (403, ("auth", "PERMISSION_DENIED"))):
        name = {404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED"}[status]
        answer = Response(status, body=json.dumps({"error": {"code": status, "status": name, "message": "m"}}).encode())
        outcomes, _ = run_exchange(DV360.start([op("add", [("email", "a@x.io")])], SETTINGS), lambda _r, a=answer: a)
        assert (outcomes[0].kind, outcomes[0].code) == expected
