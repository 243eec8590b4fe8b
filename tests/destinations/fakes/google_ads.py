"""A fake of the Google Ads API Customer Match surface: OAuth token, user lists, offline user data jobs.

Request bodies are validated against JSON Schemas written from the Google Ads REST reference
(``UserListService.MutateUserLists``, ``OfflineUserDataJobService.CreateOfflineUserDataJob`` /
``AddOfflineUserDataJobOperations`` / ``RunOfflineUserDataJob``; reference section 10). The fake
keeps each job's operations and, when a job runs, applies them to the list's membership, so a
test reads what Google would hold. ``fail_ops`` makes chosen operation indices of the next
``addOperations`` fail with a partial-failure error.

Jobs move through Google's states: ``PENDING`` until ``:run``, then ``RUNNING`` for
``running_polls`` status queries (``googleAds:search`` on ``offline_user_data_job``), then
``SUCCESS`` (the operations are applied to the list then) or, when ``fail_next_job`` names a
failure reason, ``FAILED``. Running a job twice is refused as Google refuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

VERSION = "v22"
CLIENT_ID = "gclient.apps.googleusercontent.com"
CLIENT_SECRET = "g-client-secret-xyz"
REFRESH_TOKEN = "1//g-refresh-token-abc"
ACCESS_TOKEN = "ya29.g-access-token"
DEVELOPER_TOKEN = "g-dev-token-123"
CUSTOMER = "1234567890"

HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
IDENTIFIER = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
              "properties": {"hashedEmail": HASH, "hashedPhoneNumber": HASH, "mobileId": {"type": "string"},
                             "thirdPartyUserId": {"type": "string"}}}
USER_DATA = {"type": "object", "required": ["userIdentifiers"], "additionalProperties": False,
             "properties": {"userIdentifiers": {"type": "array", "minItems": 1, "maxItems": 20, "items": IDENTIFIER}}}
OPERATION = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
             "properties": {"create": USER_DATA, "remove": USER_DATA, "removeAll": {"type": "boolean"}}}
ADD_OPERATIONS_SCHEMA = {"type": "object", "required": ["operations"], "additionalProperties": False, "properties": {
    "enablePartialFailure": {"type": "boolean"}, "validateOnly": {"type": "boolean"},
    "operations": {"type": "array", "minItems": 1, "maxItems": 100000, "items": OPERATION}}}
CONSENT_VALUE = {"enum": ["UNSPECIFIED", "UNKNOWN", "GRANTED", "DENIED"]}
JOB_SCHEMA = {"type": "object", "required": ["job"], "additionalProperties": False, "properties": {
    "job": {"type": "object", "required": ["type", "customerMatchUserListMetadata"], "additionalProperties": False,
            "properties": {
                "type": {"const": "CUSTOMER_MATCH_USER_LIST"},
                "customerMatchUserListMetadata": {
                    "type": "object", "required": ["userList"], "additionalProperties": False, "properties": {
                        "userList": {"type": "string", "pattern": r"^customers/\d+/userLists/\d+$"},
                        "consent": {"type": "object", "additionalProperties": False, "properties": {
                            "adUserData": CONSENT_VALUE, "adPersonalization": CONSENT_VALUE}}}}}}}}
USER_LIST_SCHEMA = {"type": "object", "required": ["operations"], "properties": {
    "operations": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
        "type": "object", "required": ["create"], "properties": {"create": {
            "type": "object", "required": ["name", "crmBasedUserList"], "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": {"type": "string"},
                "membershipLifeSpan": {"type": "string", "pattern": r"^\d+$"},
                "crmBasedUserList": {"type": "object", "required": ["uploadKeyType"], "additionalProperties": False,
                                     "properties": {"uploadKeyType": {"const": "CONTACT_INFO"},
                                                    "dataSourceType": {"enum": ["FIRST_PARTY"]}}}}}}}}}}
EMPTY_SCHEMA = {"type": "object", "maxProperties": 1, "properties": {"validateOnly": {"type": "boolean"}}}
SEARCH_SCHEMA = {"type": "object", "required": ["query"], "additionalProperties": False, "properties": {
    "query": {"type": "string", "pattern": r"^SELECT .+ FROM offline_user_data_job WHERE"
                                           r" offline_user_data_job\.resource_name = '[^']+'$"},
    "pageSize": {"type": "integer"}}}


def google_error(status: int, code: str, category: str, enum: str, message: str = "failed") -> Answer:
    failure = {"@type": "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure",
               "errors": [{"errorCode": {category: enum}, "message": message}]}
    return Answer(status, {"error": {"code": status, "message": "Request contains an invalid argument.",
                                     "status": code, "details": [failure]}})


def concurrent_modification() -> Answer:
    return google_error(400, "INVALID_ARGUMENT", "databaseError", "CONCURRENT_MODIFICATION",
                        "Multiple requests were attempting to modify the same resource at once.")


@dataclass
class GoogleAdsFake:
    fake: FakeVendor
    lists: dict[str, set[str]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Indices of the next addOperations call that fail, with their error enum.
    fail_ops: dict[int, str] = field(default_factory=dict)
    tokens_issued: int = 0
    lists_made: int = 0
    #: Status queries a job answers RUNNING to before it finishes.
    running_polls: int = 1
    #: A failure reason: the next job to finish ends FAILED with it.
    fail_next_job: str | None = None
    #: Status of every job after each poll, in order: (job resource name, status).
    polls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.fake.url

    @property
    def api(self) -> str:
        return f"{self.fake.url}/{VERSION}"

    def stop(self) -> None:
        self.fake.stop()

    def members(self, list_id: str) -> set[str]:
        return self.lists.get(list_id, set())


def google_ads_fake(*, delay: float = 0.0) -> GoogleAdsFake:
    state: GoogleAdsFake

    def authorised(seen: Seen) -> bool:
        return (seen.header("Authorization") == f"Bearer {ACCESS_TOKEN}"
                and seen.header("developer-token") == DEVELOPER_TOKEN)

    def denied() -> Answer:
        return Answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                      "message": "Request is missing required authentication credential."}})

    def token(seen: Seen, _m: re.Match[str]) -> Answer:
        form = {k: v[0] for k, v in seen.form().items()}
        if (form.get("grant_type") != "refresh_token" or form.get("refresh_token") != REFRESH_TOKEN
                or form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET):
            return Answer(400, {"error": "invalid_grant", "error_description": "Bad Request"})
        state.tokens_issued += 1
        return Answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})

    def create_list(seen: Seen, m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        state.lists_made += 1
        list_id = str(9000 + state.lists_made)
        state.lists[list_id] = set()
        return Answer(200, {"results": [{"resourceName": f"customers/{m.group(1)}/userLists/{list_id}"}]})

    def create_job(seen: Seen, m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        user_list = seen.json()["job"]["customerMatchUserListMetadata"]["userList"].rsplit("/", 1)[1]
        if user_list not in state.lists:
            return google_error(400, "INVALID_ARGUMENT", "offlineUserDataJobError", "INVALID_USER_LIST_ID",
                                "The user list ID provided for the job is invalid.")
        job_id = str(5000 + len(state.jobs) + 1)
        name = f"customers/{m.group(1)}/offlineUserDataJobs/{job_id}"
        state.jobs[name] = {"list": user_list, "ops": [], "ran": False, "status": "PENDING", "polled": 0}
        return Answer(200, {"resourceName": name})

    def add_operations(seen: Seen, m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        job = state.jobs.get(m.group(1))
        if job is None or job["ran"]:
            return google_error(400, "INVALID_ARGUMENT", "offlineUserDataJobError", "INVALID_JOB_STATUS")
        operations = seen.json()["operations"]
        failing, state.fail_ops = state.fail_ops, {}
        errors = []
        for index, op in enumerate(operations):
            if index in failing:
                category = "databaseError" if failing[index] == "CONCURRENT_MODIFICATION" else "offlineUserDataJobError"
                errors.append({"errorCode": {category: failing[index]}, "message": "failed",
                               "location": {"fieldPathElements": [{"fieldName": "operations", "index": index},
                                                                  {"fieldName": "create"}]}})
            else:
                job["ops"].append(op)
        if not errors:
            return Answer(200, {})
        return Answer(200, {"partialFailureError": {"code": 3, "message": "partial failure", "details": [{
            "@type": "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure", "errors": errors}]}})

    def run(seen: Seen, m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        job = state.jobs.get(m.group(1))
        if job is None:
            return Answer(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "job not found"}})
        if job["ran"]:
            return google_error(400, "INVALID_ARGUMENT", "offlineUserDataJobError", "INVALID_JOB_STATUS",
                                "The job cannot be run: it is not PENDING.")
        job["ran"] = True
        job["status"] = "RUNNING"
        return Answer(200, {"name": f"customers/{CUSTOMER}/operations/{m.group(1).rsplit('/', 1)[1]}"})

    def finish(job: dict[str, Any]) -> None:
        if state.fail_next_job is not None:
            job["status"], job["failureReason"], state.fail_next_job = "FAILED", state.fail_next_job, None
            return
        job["status"] = "SUCCESS"
        held = state.lists.setdefault(job["list"], set())
        for op in job["ops"]:
            for kind, data in op.items():
                for ident in data["userIdentifiers"]:
                    (held.add if kind == "create" else held.discard)(next(iter(ident.values())))

    def search(seen: Seen, _m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        name = seen.json()["query"].rsplit("'", 2)[1]
        job = state.jobs.get(name)
        if job is None:
            return Answer(200, {"results": [], "fieldMask": "offlineUserDataJob.status"})
        if job["status"] == "RUNNING":
            job["polled"] += 1
            if job["polled"] > state.running_polls:
                finish(job)
        state.polls.append((name, job["status"]))
        found = {"resourceName": name, "status": job["status"]}
        if "failureReason" in job:
            found["failureReason"] = job["failureReason"]
        return Answer(200, {"results": [{"offlineUserDataJob": found}],
                            "fieldMask": "offlineUserDataJob.resourceName,offlineUserDataJob.status,"
                                         "offlineUserDataJob.failureReason"})

    def accessible(seen: Seen, _m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return denied()
        return Answer(200, {"resourceNames": [f"customers/{CUSTOMER}"]})

    v = VERSION
    fake = FakeVendor([
        Route("POST", r"/oauth2/token", token, schema={"type": "object", "required": ["grant_type"]}, form=True),
        Route("POST", rf"/{v}/customers/(\d+)/userLists:mutate", create_list, schema=USER_LIST_SCHEMA),
        Route("POST", rf"/{v}/customers/(\d+)/offlineUserDataJobs:create", create_job, schema=JOB_SCHEMA),
        Route("POST", rf"/{v}/(customers/\d+/offlineUserDataJobs/\d+):addOperations", add_operations,
              schema=ADD_OPERATIONS_SCHEMA),
        Route("POST", rf"/{v}/(customers/\d+/offlineUserDataJobs/\d+):run", run, schema=EMPTY_SCHEMA),
        Route("POST", rf"/{v}/customers/(\d+)/googleAds:search", search, schema=SEARCH_SCHEMA),
        Route("GET", rf"/{v}/customers:listAccessibleCustomers", accessible),
    ], delay=delay)
    state = GoogleAdsFake(fake)
    fake.start()
    return state


def settings_yaml(fake: GoogleAdsFake, **extra: str) -> str:
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return (f'{{customer_id: "123-456-7890", developer_token: "{DEVELOPER_TOKEN}", client_id: "{CLIENT_ID}",'
            f' client_secret: "{CLIENT_SECRET}", refresh_token: "{REFRESH_TOKEN}",'
            f' token_url: "{fake.url}/oauth2/token", endpoint: "{fake.api}",'
            f' job_poll_initial_s: 0.01, job_poll_max_s: 0.04{more}}}')
