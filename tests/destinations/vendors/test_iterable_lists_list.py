"""Iterable Lists: the exchange against canned answers."""

from __future__ import annotations

import json

from traitsync.destinations.base import LIST_GONE, Item, Response, run_exchange
from traitsync.destinations.registry import get_destination
from traitsync.destinations.vendors.iterable_lists import DESTINATION as ITERABLE
from traitsync.destinations.vendors.iterable_lists import IterableListsSettings

SETTINGS = IterableListsSettings.model_validate({"apiKey": "k", "dataCenterLocation": "EU"})


def op(action: str, members: list[tuple[str, str]]) -> Item:
    return Item({"type": "audience_list", "action": action, "audience": {"id": "a", "key": "k", "name": "K"},
                 "members": [{"type": t, "value": v} for t, v in members],
                 "context": {"personas": {"external_audience_id": "12"}}})


def test_registered_eu_host_batches_and_identifiers() -> None:
    assert get_destination("iterable_lists") is ITERABLE and ITERABLE.list_batch == 1000
    members = [("email", f"U{i}@x.io") for i in range(1001)] + [("email", "u0@x.io"), ("user_id", " spaced"),
                                                                 ("user_id", "u7"), ("phone", "+1")]
    outcomes, sent = run_exchange(ITERABLE.start([op("remove", members)], SETTINGS),
                                  lambda _r: Response(200, body=b'{"successCount": 1, "failCount": 0}'))
    assert outcomes[0].kind == "ok"
    assert [r.url for r in sent] == ["https://api.eu.iterable.com/api/lists/unsubscribe"] * 2
    bodies = [json.loads(r.body) for r in sent]
    assert [len(b["subscribers"]) for b in bodies] == [1000, 2]
    assert bodies[1] == {"listId": 12, "subscribers": [{"email": "u1000@x.io"}, {"userId": "u7", "preferUserId": True}],
                         "channelUnsubscribe": False}


def test_answers() -> None:
    cases = [(Response(400, body=b'{"code": "BadParams", "msg": "listId 12 does not exist", "params": {"listId": 12}}'),
              ("drop", LIST_GONE)),
             (Response(401, body=b'{"code": "BadApiKey"}'), ("auth", "BadApiKey")),
             (Response(429, body=b'{"code": "RateLimitExceeded"}'), ("retry", "RateLimitExceeded")),
             (Response(200, body=b'{"successCount": 0, "failCount": 1, "invalidEmails": ["a@x"],'
                                 b' "failedUpdates": {"notFoundEmails": ["b@x.io"]}}'), ("ok", None))]
    for response, expected in cases:
        outcomes, _ = run_exchange(ITERABLE.start([op("add", [("email", "a@x.io")])], SETTINGS),
                                   lambda _r, a=response: a)
        assert (outcomes[0].kind, outcomes[0].code) == expected
        assert "a@x" not in (outcomes[0].message or "")
    assert outcomes[0].detail == {"refused_members": 1}
