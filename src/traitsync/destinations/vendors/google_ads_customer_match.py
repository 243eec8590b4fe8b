"""Google Ads Customer Match: an audience becomes a CRM-based user list (contact info).

The first sync creates the user list (``POST /customers/<id>/userLists:mutate`` with
``crmBasedUserList.uploadKeyType = CONTACT_INFO``, named after the audience) and keeps its id
from the answer's resource name (``customers/<id>/userLists/<list id>``). Each later add or
remove operation becomes one offline user data job: ``offlineUserDataJobs:create`` naming the
list (and the consent settings), ``<job>:addOperations`` with ``enablePartialFailure: true`` in
requests of up to 10,000 operations (one identifier each: ``hashedEmail`` or
``hashedPhoneNumber``), then ``<job>:run``, then the job is polled (``googleAds:search`` on
``offline_user_data_job.status``) with a doubling wait until it is ``SUCCESS`` or ``FAILED``
(a failed job is retried as a whole), for at most ``job_wait_s``: a job still running then
is left to Google, which finishes it on its own.

Identifiers: email trimmed, lowercased, dots of a gmail.com/googlemail.com local part removed,
SHA-256; phone in E.164 (``+`` and the country code; numbers without one take
``phone_region``), SHA-256. A value that is already a SHA-256 passes through; one that cannot be
normalised is left out, never sent in plain text. Other identifier types cannot go to a
CONTACT_INFO list and are left out.

Partial failures come back as a 200 with ``partialFailureError`` whose errors point at
``operations[i]``: operations that failed for a transient reason (``CONCURRENT_MODIFICATION``,
``INTERNAL_ERROR``...) are added to the same job again (up to three rounds) before it runs;
operations Google rejects for good (a malformed hash) are reported by member position in the
outcome's detail (``rejected``), so those members are not recorded as on the list and the next
sync tries them again. A whole request answered 400 ``CONCURRENT_MODIFICATION`` (two jobs on the same list),
429 or 5xx is retried; ``INVALID_USER_LIST_ID`` / ``RESOURCE_NOT_FOUND`` mean the list is
gone, so the next sync creates it again. Google processes jobs in 6 to 48 hours, hence the
6-hour floor on the sync cadence.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, SecretStr

from traitsync.destinations.auth import Token
from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Exchange,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
)
from traitsync.destinations.pii import InvalidIdentifier, hash_email, hash_phone_e164
from traitsync.destinations.vendors._google import (
    GOOGLE_AUTH,
    RETRY_CODES,
    classify_google,
    google_errors,
)
from traitsync.destinations.vendors._lists import Step, audience_key, audience_name, created, list_exchange

DEFAULT_HOST = "https://googleads.googleapis.com/v22"
#: Identifiers per job (Google: up to 100,000 per job; larger jobs are preferred to many small ones).
MEMBERS_PER_JOB = 100_000
#: Operations per ``addOperations`` request (our choice: bodies of about 1 MB).
OPERATIONS_PER_REQUEST = 10_000
#: Rounds of re-adding operations that failed for a transient reason before the job runs.
READD_ROUNDS = 3
Consent = Literal["GRANTED", "DENIED", "UNSPECIFIED"]


class GoogleAdsCustomerMatchSettings(DestinationSettings):
    customer_id: str = Field(pattern=r"^\d{3}-?\d{3}-?\d{4}$", description="The Google Ads account (123-456-7890).")
    login_customer_id: str | None = Field(default=None, pattern=r"^\d{3}-?\d{3}-?\d{4}$",
                                          description="The manager account, when access goes through one.")
    developer_token: SecretStr = Field(description="The Google Ads API developer token.")
    client_id: str = Field(min_length=1, description="OAuth client id.")
    client_secret: SecretStr = Field(description="OAuth client secret.")
    refresh_token: SecretStr = Field(description="OAuth refresh token with the adwords scope.")
    token_url: str | None = Field(default=None, description="Override the OAuth token endpoint.")
    ad_user_data_consent: Consent = "UNSPECIFIED"
    ad_personalization_consent: Consent = "UNSPECIFIED"
    membership_life_span_days: int = Field(default=540, ge=1, le=10000,
                                           description="Days a member stays on the list (10000: no expiry).")
    phone_region: str = Field(default="US", min_length=2, max_length=2,
                              description="Country of phone numbers written without a country code.")
    job_poll_initial_s: float = Field(default=2.0, gt=0, le=600,
                                      description="First wait before asking whether a job is done; doubles each time.")
    job_poll_max_s: float = Field(default=60.0, gt=0, le=3600, description="Longest wait between two job polls.")
    job_wait_s: float = Field(default=600.0, ge=0, le=86400,
                              description="How long to poll a running job before leaving it to Google "
                                          "(jobs take 6 to 48 hours; 0: never poll).")

    @property
    def host(self) -> str:
        return (self.endpoint or DEFAULT_HOST).rstrip("/")

    @property
    def customer(self) -> str:
        return self.customer_id.replace("-", "")


def user_identifier(member: Mapping[str, Any], settings: GoogleAdsCustomerMatchSettings) -> dict[str, str] | None:
    """One ``userIdentifiers`` entry, or ``None`` when a CONTACT_INFO list cannot take the value."""
    kind, value = str(member.get("type", "")), str(member.get("value", ""))
    try:
        if kind == "email":
            return {"hashedEmail": hash_email(value, google=True)}
        if kind == "phone":
            return {"hashedPhoneNumber": hash_phone_e164(value, settings.phone_region)}
    except InvalidIdentifier:
        return None
    return None


def _headers(settings: GoogleAdsCustomerMatchSettings) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "developer-token": settings.developer_token.get_secret_value()}
    if settings.login_customer_id:
        headers["login-customer-id"] = settings.login_customer_id.replace("-", "")
    return headers


def _create(message: Mapping[str, Any], settings: GoogleAdsCustomerMatchSettings, _token: Token | None) -> Step:
    body = {"operations": [{"create": {
        "name": audience_name(message),
        "description": f"traitsync audience {audience_key(message)}",
        "membershipLifeSpan": str(settings.membership_life_span_days),
        "crmBasedUserList": {"uploadKeyType": "CONTACT_INFO", "dataSourceType": "FIRST_PARTY"}}}]}
    answer = yield Request("POST", f"{settings.host}/customers/{settings.customer}/userLists:mutate", dumps(body),
                           headers=_headers(settings), purpose="create")
    outcome = classify_google(answer)
    if outcome.kind != "ok":
        return outcome
    results = (answer.json() or {}).get("results") if isinstance(answer.json(), dict) else None
    name = results[0].get("resourceName") if isinstance(results, list) and results and isinstance(
        results[0], dict) else None
    return created(outcome, name.rsplit("/", 1)[1] if isinstance(name, str) and "/userLists/" in name else None,
                   "Google")


def _partial_failures(answer: Response) -> dict[int, str]:
    data = answer.json()
    failure = data.get("partialFailureError") if isinstance(data, dict) else None
    if not isinstance(failure, dict) or not failure.get("details"):
        return {}
    return {index: code for code, _, index in google_errors(failure) if index is not None}


def _upload(message: Mapping[str, Any], settings: GoogleAdsCustomerMatchSettings, _token: Token | None, action: str,
            list_id: str) -> Step:
    operation = "create" if action == "add" else "remove"
    identifiers: list[dict[str, str]] = []
    positions: list[int] = []  # identifiers[k] is member positions[k] of the message
    for position, member in enumerate(message.get("members", [])):
        ident = user_identifier(member, settings)
        if ident is not None:
            identifiers.append(ident)
            positions.append(position)
    if not identifiers:
        return Outcome.ok()  # nothing Google can match
    job_body = {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": {
        "userList": f"customers/{settings.customer}/userLists/{list_id}",
        "consent": {"adUserData": settings.ad_user_data_consent,
                    "adPersonalization": settings.ad_personalization_consent}}}}
    answer = yield Request("POST", f"{settings.host}/customers/{settings.customer}/offlineUserDataJobs:create",
                           dumps(job_body), headers=_headers(settings), purpose="create job")
    outcome = classify_google(answer)
    if outcome.kind != "ok":
        return outcome
    data = answer.json()
    job = data.get("resourceName") if isinstance(data, dict) else None
    if not isinstance(job, str) or "/offlineUserDataJobs/" not in job:
        return Outcome.retry(code="GOOGLE_NO_JOB", message="offlineUserDataJobs:create answered without a job")
    rejected: dict[int, str] = {}  # member position -> the error Google rejected it with for good
    for start in range(0, len(identifiers), OPERATIONS_PER_REQUEST):
        # (member position, operation) pairs still to add; operation i of a request is pending[i].
        pending = [(positions[k], {operation: {"userIdentifiers": [identifiers[k]]}})
                   for k in range(start, min(start + OPERATIONS_PER_REQUEST, len(identifiers)))]
        for _round in range(READD_ROUNDS):
            answer = yield Request("POST", f"{settings.host}/{job}:addOperations",
                                   dumps({"enablePartialFailure": True, "operations": [op for _, op in pending]}),
                                   headers=_headers(settings), purpose=f"{action} members")
            outcome = classify_google(answer)
            if outcome.kind != "ok":
                return outcome
            failed = {i: code for i, code in _partial_failures(answer).items() if i < len(pending)}
            for i, code in failed.items():
                if code not in RETRY_CODES:
                    rejected[pending[i][0]] = code
            pending = [pending[i] for i, code in sorted(failed.items()) if code in RETRY_CODES]
            if not pending:
                break
        if pending:  # still failing for a transient reason: the whole operation goes again later
            return Outcome.retry(code="CONCURRENT_MODIFICATION",
                                 message=f"{len(pending)} operations kept failing transiently")
    answer = yield Request("POST", f"{settings.host}/{job}:run", b"{}", headers=_headers(settings), purpose="run job")
    outcome = classify_google(answer)
    if outcome.kind != "ok":
        return outcome
    status = yield from _wait_for_job(job, settings)
    if status.kind != "ok":
        return status
    detail: dict[str, Any] = dict(status.detail or {})
    if rejected:
        # Positions, never values: the outcome is stored and shown, and values are personal data.
        detail.update(rejected=sorted(rejected), rejected_codes=sorted(set(rejected.values())))
    return Outcome.ok(detail or None)


def _job_query(job: str) -> bytes:
    return dumps({"query": "SELECT offline_user_data_job.resource_name, offline_user_data_job.status,"
                           " offline_user_data_job.failure_reason FROM offline_user_data_job"
                           f" WHERE offline_user_data_job.resource_name = '{job}'"})


def _wait_for_job(job: str, settings: GoogleAdsCustomerMatchSettings) -> Generator[Request, Response, Outcome]:
    """Poll a job that was told to run until Google says it is done, backing off between polls.

    ``SUCCESS``: ok. ``FAILED``: retried as a whole (a new job) with the failure reason as code.
    Still ``PENDING``/``RUNNING`` after ``job_wait_s``: ok, with the status in the detail:
    Google has every operation and finishes the job on its own (it may take hours), and
    holding a delivery slot for that long would stall every other list. A poll answered with
    an error does not undo the upload; polling goes on until the wait is over.
    """
    waited, wait, status = 0.0, settings.job_poll_initial_s, "PENDING"
    while waited + wait <= settings.job_wait_s:
        answer = yield Request("POST", f"{settings.host}/customers/{settings.customer}/googleAds:search",
                               _job_query(job), headers=_headers(settings), purpose="poll job", delay=wait)
        waited += wait
        wait = min(wait * 2, settings.job_poll_max_s)
        data = answer.json() if answer.ok else None
        results = data.get("results") if isinstance(data, dict) else None
        found = results[0].get("offlineUserDataJob") if isinstance(results, list) and results and isinstance(
            results[0], dict) else None
        if not isinstance(found, dict):
            continue
        status = str(found.get("status", "UNKNOWN"))
        if status == "SUCCESS":
            return Outcome.ok()
        if status == "FAILED":
            reason = str(found.get("failureReason") or "UNSPECIFIED")
            return Outcome.retry(code=f"GOOGLE_JOB_{reason}", message=f"offline user data job {job} failed: {reason}")
    return Outcome.ok({"job_status": status})


def exchange(items: Sequence[Item], settings: GoogleAdsCustomerMatchSettings, token: Token | None) -> Exchange:
    """One list operation per exchange (``max_batch`` 1): create the list, or one job per add/remove."""
    return list_exchange(items, settings, token, vendor="Google", create=_create, upload=_upload)


def check(settings: GoogleAdsCustomerMatchSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.host}/customers:listAccessibleCustomers", headers=_headers(settings),
                   purpose="check")


DESTINATION: Destination[GoogleAdsCustomerMatchSettings] = Destination(
    name="Google Ads Customer Match",
    slug="google_ads_customer_match",
    settings_model=GoogleAdsCustomerMatchSettings,
    exchange=exchange,
    auth=GOOGLE_AUTH,
    check=check,
    default_rate=5.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=21600.0,
    list_id_before_members=True,
    members_per_operation=MEMBERS_PER_JOB,
    min_list_size=100,
    timeout_s=60.0,
    description="Customer Match user lists (contact info) through offline user data jobs; email and phone "
                "hashed as Google requires.",
)
