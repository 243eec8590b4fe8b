"""A fake of the Display & Video 360 API v4 first-party audiences, plus Google's OAuth token.

Bodies are validated against JSON Schemas written from the DV360 v4 reference (discovery
document ``displayvideo v4``; reference section 11): ``FirstPartyAndPartnerAudience`` for the
create and ``EditCustomerMatchMembersRequest`` (``advertiserId`` and exactly one of
``addedContactInfoList`` / ``removedContactInfoList``, each ``contactInfos`` with lowercase
SHA-256 hashes and a ``consent``). The fake applies edits to each audience's membership.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

CLIENT_ID = "dv-client.apps.googleusercontent.com"
CLIENT_SECRET = "dv-client-secret-xyz"
REFRESH_TOKEN = "1//dv-refresh-token"
ACCESS_TOKEN = "ya29.dv-access-token"
ADVERTISER = "4304640"

HASHES = {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
CONSENT_STATUS = {"enum": ["CONSENT_STATUS_UNSPECIFIED", "CONSENT_STATUS_GRANTED", "CONSENT_STATUS_DENIED"]}
CONTACT_INFO_LIST = {"type": "object", "required": ["contactInfos"], "additionalProperties": False, "properties": {
    "contactInfos": {"type": "array", "minItems": 1, "maxItems": 500000, "items": {
        "type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
            "hashedEmails": HASHES, "hashedPhoneNumbers": HASHES, "hashedFirstName": {"type": "string"},
            "hashedLastName": {"type": "string"}, "zipCodes": {"type": "array"}, "countryCode": {"type": "string"}}}},
    "consent": {"type": "object", "additionalProperties": False,
                "properties": {"adUserData": CONSENT_STATUS, "adPersonalization": CONSENT_STATUS}}}}
EDIT_SCHEMA = {"type": "object", "required": ["advertiserId"], "additionalProperties": False,
               "oneOf": [{"required": ["addedContactInfoList"]}, {"required": ["removedContactInfoList"]}],
               "properties": {"advertiserId": {"const": ADVERTISER}, "addedContactInfoList": CONTACT_INFO_LIST,
                              "removedContactInfoList": CONTACT_INFO_LIST}}
CREATE_SCHEMA = {"type": "object", "required": ["displayName", "audienceType", "firstPartyAndPartnerAudienceType"],
                 "additionalProperties": False, "properties": {
                     "displayName": {"type": "string", "minLength": 1}, "description": {"type": "string"},
                     "audienceType": {"enum": ["CUSTOMER_MATCH_CONTACT_INFO", "CUSTOMER_MATCH_DEVICE_ID"]},
                     "audienceSource": {"const": "AUDIENCE_SOURCE_UNSPECIFIED"},
                     "firstPartyAndPartnerAudienceType": {"const": "TYPE_FIRST_PARTY"},
                     "membershipDurationDays": {"type": "string", "pattern": r"^\d+$"}, "appId": {"type": "string"}}}


@dataclass
class DV360Fake:
    fake: FakeVendor
    audiences: dict[str, set[str]] = field(default_factory=dict)
    made: int = 0
    tokens_issued: int = 0

    @property
    def url(self) -> str:
        return self.fake.url

    def stop(self) -> None:
        self.fake.stop()


def dv360_fake() -> DV360Fake:
    state: DV360Fake

    def denied(seen: Seen) -> Answer | None:
        if seen.header("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return Answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad credentials"}})
        return None

    def token(seen: Seen, _m: re.Match[str]) -> Answer:
        form = {k: v[0] for k, v in seen.form().items()}
        if form.get("refresh_token") != REFRESH_TOKEN or form.get("client_secret") != CLIENT_SECRET:
            return Answer(400, {"error": "invalid_grant"})
        state.tokens_issued += 1
        return Answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})

    def create(seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        if seen.query.get("advertiserId") != [ADVERTISER]:
            return Answer(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "advertiserId"}})
        state.made += 1
        audience_id = str(7_100_000 + state.made)
        state.audiences[audience_id] = set()
        return Answer(200, {**seen.json(), "name": f"firstPartyAndPartnerAudiences/{audience_id}",
                            "firstPartyAndPartnerAudienceId": audience_id})

    def edit(seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := denied(seen)) is not None:
            return refused
        held = state.audiences.get(m.group(1))
        if held is None:
            return Answer(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Entity not found."}})
        body = seen.json()
        adding = "addedContactInfoList" in body
        for info in body["addedContactInfoList" if adding else "removedContactInfoList"]["contactInfos"]:
            for hashed in info.get("hashedEmails", []) + info.get("hashedPhoneNumbers", []):
                (held.add if adding else held.discard)(hashed)
        return Answer(200, {"firstPartyAndPartnerAudienceId": m.group(1)})

    fake = FakeVendor([
        Route("POST", r"/token", token, schema={"type": "object", "required": ["grant_type"]}, form=True),
        Route("POST", r"/v4/firstPartyAndPartnerAudiences", create, schema=CREATE_SCHEMA),
        Route("POST", r"/v4/firstPartyAndPartnerAudiences/(\d+):editCustomerMatchMembers", edit, schema=EDIT_SCHEMA),
    ])
    state = DV360Fake(fake)
    fake.start()
    return state


def settings_yaml(fake: DV360Fake) -> str:
    return (f'{{advertiser_id: "{ADVERTISER}", client_id: "{CLIENT_ID}", client_secret: "{CLIENT_SECRET}",'
            f' refresh_token: "{REFRESH_TOKEN}", token_url: "{fake.url}/token", endpoint: "{fake.url}/v4",'
            f' ad_user_data_consent: CONSENT_STATUS_GRANTED, ad_personalization_consent: CONSENT_STATUS_DENIED}}')
