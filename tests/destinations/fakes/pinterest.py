"""A fake of the Pinterest API v5 customer lists, validating bodies against the OpenAPI schemas.

``CustomerListRequest`` (``name``, ``records`` required; ``list_type`` of ``UserListType``) and
``CustomerListUpdateRequest`` (``operation_type`` ADD/REMOVE, ``records``), from
``pinterest/api-description`` ``v5/openapi.yaml`` (reference section 13). The records string is
additionally checked to hold only lowercase SHA-256 values, each once, so a plain email fails.
The fake applies ADD/REMOVE to each list's membership.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CLIENT_ID = "1484362"
CLIENT_SECRET = "pin-app-secret-xyz"
REFRESH_TOKEN = "pinr.refresh-token-abc"
ACCESS_TOKEN = "pina_access-token-123"
AD_ACCOUNT = "549755885175"

RECORDS = {"type": "string", "pattern": r"^[0-9a-f]{64}(,[0-9a-f]{64})*$"}
CREATE_SCHEMA = {"type": "object", "required": ["name", "records"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1}, "records": RECORDS,
    "list_type": {"enum": ["EMAIL", "IDFA", "MAID", "LR_ID", "DLX_ID", "HASHED_PINNER_ID"]}}}
UPDATE_SCHEMA = {"type": "object", "required": ["operation_type", "records"], "additionalProperties": False,
                 "properties": {"operation_type": {"enum": ["ADD", "REMOVE"]}, "records": RECORDS}}


@dataclass
class PinterestFake:
    fake: FakeVendor
    lists: dict[str, set[str]] = field(default_factory=dict)
    made: int = 0
    tokens_issued: int = 0
    duplicates: int = 0

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()


def pinterest_fake() -> PinterestFake:
    state: PinterestFake

    def authorised(seen: Seen) -> bool:
        return seen.header("Authorization") == f"Bearer {ACCESS_TOKEN}"

    def denied() -> Answer:
        return Answer(401, {"code": 2, "message": "Authentication failed."})

    def token(seen: Seen, _m: re.Match[str]) -> Answer:
        form = {k: v[0] for k, v in seen.form().items()}
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if seen.header("Authorization") != f"Basic {basic}" or form.get("refresh_token") != REFRESH_TOKEN:
            return Answer(401, {"code": 1, "message": "Invalid client"})
        state.tokens_issued += 1
        return Answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 2592000, "token_type": "bearer"})

    def create(seen: Seen, _m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        state.made += 1
        list_id = str(643_000 + state.made)
        body = seen.json()
        state.lists[list_id] = set(body["records"].split(","))
        return Answer(200, {"id": list_id, "name": body["name"], "ad_account_id": AD_ACCOUNT,
                                              "status": "PROCESSING", "type": "customerlist"})

    def update(seen: Seen, m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        held = state.lists.get(m.group(1))
        if held is None:
            return Answer(404, {"code": 2601, "message": "Customer list not found."})
        body = seen.json()
        records = body["records"].split(",")
        state.duplicates += len(records) - len(set(records))
        for r in records:
            (held.add if body["operation_type"] == "ADD" else held.discard)(r)
        return Answer(200, {"id": m.group(1), "ad_account_id": AD_ACCOUNT, "status": "PROCESSING"})

    fake = FakeVendor([
        Route("POST", r"/v5/oauth/token", token, schema={"type": "object", "required": ["grant_type", "refresh_token"],
                                                          "properties": {"grant_type": {"const": "refresh_token"}}},
              form=True),
        Route("POST", rf"/v5/ad_accounts/{AD_ACCOUNT}/customer_lists", create, schema=CREATE_SCHEMA),
        Route("PATCH", rf"/v5/ad_accounts/{AD_ACCOUNT}/customer_lists/(\d+)", update, schema=UPDATE_SCHEMA),
    ])
    state = PinterestFake(fake)
    fake.start()
    return state


def settings_yaml(fake: PinterestFake) -> str:
    return (f'{{ad_account_id: "{AD_ACCOUNT}", client_id: "{CLIENT_ID}", client_secret: "{CLIENT_SECRET}",'
            f' refresh_token: "{REFRESH_TOKEN}", token_url: "{fake.url}/v5/oauth/token", endpoint: "{fake.url}/v5"}}')
