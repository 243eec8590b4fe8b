"""A fake of Iterable's list API: create, subscribe, unsubscribe.

Bodies are validated against schemas written from Iterable's API reference and the zod schemas
of ``Iterable/api-client`` (reference section 3): ``subscribers`` 1..1,000 with an ``email`` or
a ``userId`` each, ``listId`` an integer. Like Iterable, malformed emails are listed in
``invalidEmails`` of a 200 answer and the rest go through; an unknown ``listId`` answers 400
``BadParams``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

API_KEY = "iterable-server-key-123"
SUBSCRIBER = {"type": "object", "anyOf": [{"required": ["email"]}, {"required": ["userId"]}],
              "additionalProperties": False, "properties": {
                  "email": {"type": "string"}, "userId": {"type": "string", "minLength": 1},
                  "preferUserId": {"type": "boolean"}, "dataFields": {"type": "object"}}}
SUBSCRIBE = {"type": "object", "required": ["listId", "subscribers"], "additionalProperties": False, "properties": {
    "listId": {"type": "integer"}, "updateExistingUsersOnly": {"type": "boolean"},
    "subscribers": {"type": "array", "minItems": 1, "maxItems": 1000, "items": SUBSCRIBER}}}
UNSUBSCRIBE = {"type": "object", "required": ["listId", "subscribers"], "additionalProperties": False, "properties": {
    "listId": {"type": "integer"}, "campaignId": {"type": "integer"}, "channelUnsubscribe": {"const": False},
    "subscribers": {"type": "array", "minItems": 1, "maxItems": 1000, "items": SUBSCRIBER}}}
CREATE = {"type": "object", "required": ["name"], "additionalProperties": False,
          "properties": {"name": {"type": "string", "minLength": 1}, "description": {"type": "string"}}}
_VALID = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


@dataclass
class IterableFake:
    fake: FakeVendor
    lists: dict[int, set[str]] = field(default_factory=dict)
    made: int = 0

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()


def iterable_fake() -> IterableFake:
    state: IterableFake

    def refused(seen: Seen) -> Answer | None:
        if seen.header("Api-Key") != API_KEY:
            return Answer(401, {"msg": "Invalid API key", "code": "BadApiKey", "params": None})
        return None

    def create(seen: Seen, _m: re.Match[str]) -> Answer:
        if (no := refused(seen)) is not None:
            return no
        state.made += 1
        list_id = 7000 + state.made
        state.lists[list_id] = set()
        return Answer(200, {"listId": list_id})

    def change(seen: Seen, m: re.Match[str]) -> Answer:
        if (no := refused(seen)) is not None:
            return no
        body = seen.json()
        held = state.lists.get(body["listId"])
        if held is None:
            return Answer(400, {"msg": f"listId {body['listId']} does not exist", "code": "BadParams",
                                "params": {"listId": body["listId"]}})
        invalid, done = [], 0
        for sub in body["subscribers"]:
            key = sub.get("email") or f"user:{sub['userId']}"
            if "email" in sub and not _VALID.match(sub["email"]):
                invalid.append(sub["email"])
                continue
            (held.add if m.group(1) == "subscribe" else held.discard)(key)
            done += 1
        return Answer(200, {"successCount": done, "failCount": len(invalid), "invalidEmails": invalid,
                            "invalidUserIds": []})

    fake = FakeVendor([
        Route("POST", r"/api/lists", create, schema=CREATE),
        Route("POST", r"/api/lists/(subscribe)", change, schema=SUBSCRIBE),
        Route("POST", r"/api/lists/(unsubscribe)", change, schema=UNSUBSCRIBE),
    ])
    state = IterableFake(fake)
    fake.start()
    return state
