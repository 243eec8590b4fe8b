"""A fake of the Snap Marketing API customer-list surface: OAuth token, segments, segment users.

Bodies are validated against JSON Schemas written from Snap's Audience Segments reference
(reference section 12): ``users`` holds one schema per request, each row one SHA-256, no row
twice, at most 100,000 rows. The fake applies adds and removes to each segment's membership.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CLIENT_ID = "snap-client-id"
CLIENT_SECRET = "snap-client-secret-xyz"
REFRESH_TOKEN = "snap-refresh-token-abc"
ACCESS_TOKEN = "snap-access-token-123"
AD_ACCOUNT = "8adc3db7-8148-4fbf-999c-8d2266369d74"

HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
USERS_SCHEMA = {"type": "object", "required": ["users"], "additionalProperties": False, "properties": {
    "users": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
        "type": "object", "required": ["schema", "data"], "additionalProperties": False, "properties": {
            "schema": {"type": "array", "minItems": 1, "maxItems": 1,
                       "items": {"enum": ["EMAIL_SHA256", "PHONE_SHA256", "MOBILE_AD_ID_SHA256"]}},
            "data": {"type": "array", "minItems": 1, "maxItems": 100000, "uniqueItems": True,
                     "items": {"type": "array", "minItems": 1, "maxItems": 1, "items": HASH}}}}}}}
SEGMENT_SCHEMA = {"type": "object", "required": ["segments"], "additionalProperties": False, "properties": {
    "segments": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
        "type": "object", "required": ["name", "source_type", "retention_in_days", "ad_account_id"],
        "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 375}, "description": {"type": "string"},
            "source_type": {"const": "FIRST_PARTY"}, "retention_in_days": {"type": "integer", "minimum": 1},
            "ad_account_id": {"const": AD_ACCOUNT}}}}}}


@dataclass
class SnapFake:
    fake: FakeVendor
    segments: dict[str, set[str]] = field(default_factory=dict)
    made: int = 0
    tokens_issued: int = 0

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()


def snapchat_fake() -> SnapFake:
    state: SnapFake

    def authorised(seen: Seen) -> bool:
        return seen.header("Authorization") == f"Bearer {ACCESS_TOKEN}"

    def denied() -> Answer:
        return Answer(401, {"request_status": "ERROR", "debug_message": "Unauthorized"})

    def token(seen: Seen, _m: re.Match[str]) -> Answer:
        form = {k: v[0] for k, v in seen.form().items()}
        if (form.get("refresh_token") != REFRESH_TOKEN or form.get("client_secret") != CLIENT_SECRET
                or form.get("client_id") != CLIENT_ID):
            return Answer(400, {"error": "invalid_grant"})
        state.tokens_issued += 1
        return Answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 1800, "token_type": "Bearer"})

    def create(seen: Seen, _m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        state.made += 1
        sid = str(4_600_000 + state.made)
        state.segments[sid] = set()
        segment = {**seen.json()["segments"][0], "id": sid, "status": "ACTIVE"}
        return Answer(200, {"request_status": "SUCCESS", "request_id": "r1",
                            "segments": [{"sub_request_status": "SUCCESS", "segment": segment}]})

    def users(seen: Seen, m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        held = state.segments.get(m.group(1))
        if held is None:
            return Answer(404, {"request_status": "ERROR", "debug_message": "Segment not found",
                                "error_code": "E1008"})
        rows = [r[0] for r in seen.json()["users"][0]["data"]]
        for h in rows:
            (held.add if seen.method == "POST" else held.discard)(h)
        return Answer(200, {"request_status": "SUCCESS", "request_id": "r2", "users": [
            {"sub_request_status": "SUCCESS", "user": {"number_uploaded_users": len(rows)}}]})

    fake = FakeVendor([
        Route("POST", r"/login/oauth2/access_token", token, schema={"type": "object", "required": ["grant_type"]},
              form=True),
        Route("POST", rf"/v1/adaccounts/{AD_ACCOUNT}/segments", create, schema=SEGMENT_SCHEMA),
        Route("POST", r"/v1/segments/(\d+)/users", users, schema=USERS_SCHEMA),
        Route("DELETE", r"/v1/segments/(\d+)/users", users, schema=USERS_SCHEMA),
    ])
    state = SnapFake(fake)
    fake.start()
    return state


def settings_yaml(fake: SnapFake) -> str:
    return (f'{{ad_account_id: "{AD_ACCOUNT}", client_id: "{CLIENT_ID}", client_secret: "{CLIENT_SECRET}",'
            f' refresh_token: "{REFRESH_TOKEN}", token_url: "{fake.url}/login/oauth2/access_token",'
            f' endpoint: "{fake.url}/v1"}}')
