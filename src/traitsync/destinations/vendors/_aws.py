"""AWS JSON-protocol requests signed with SigV4 through botocore (Kinesis, EventBridge).

The adapters stay pure: a request is built and signed with botocore's ``SigV4Auth`` (the same
signer the AWS SDK uses), and sent by delivery's ordinary HTTP transport. Credentials are the
destination's ``access_key_id`` / ``secret_access_key`` (and ``session_token`` for temporary
ones), else botocore's default chain (environment, shared config and profiles, container or
instance role), resolved once per process; with none at all the request is sent unsigned and
AWS's refusal pauses the destination. A signature is valid for 5 minutes; every attempt
builds and signs its request anew, so a retry never carries a stale one.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from traitsync.destinations.base import DestinationSettings, Outcome, Request, Response, dumps, status_outcome

_lock = threading.Lock()
_default_credentials: Any = None

#: Error types (``__type`` of a whole-call error, ``ErrorCode`` of one record) by what they mean.
THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "LimitExceededException",
                       "KMSThrottlingException", "InternalFailure", "InternalFailureException",
                       "ServiceUnavailableException", "ServiceUnavailable", "RequestTimeout"})
CREDENTIALS = frozenset({"UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
                         "ExpiredTokenException", "MissingAuthenticationTokenException",
                         "IncompleteSignatureException", "KMSAccessDeniedException", "KMSDisabledException",
                         "KMSInvalidStateException", "KMSNotFoundException", "KMSOptInRequired",
                         "ResourceNotFoundException", "NotAuthorized"})


class AwsSettings(DestinationSettings):
    awsRegion: str = Field(description="The AWS region, e.g. us-east-1.", min_length=1)  # the Segment name
    access_key_id: str | None = Field(default=None, description="Access key id; default: botocore's chain.")
    secret_access_key: SecretStr | None = Field(default=None, description="Secret access key.")
    session_token: SecretStr | None = Field(default=None, description="Session token of temporary credentials.")

    @field_validator("awsRegion")
    @classmethod
    def _region(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", value):
            raise ValueError(f"awsRegion {value!r} is not an AWS region name such as us-east-1")
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> AwsSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together (or leave both out to use "
                             "the AWS default credential chain)")
        return self


def credentials(settings: AwsSettings) -> Any:
    from botocore.credentials import Credentials

    if settings.access_key_id and settings.secret_access_key is not None:
        token = settings.session_token.get_secret_value() if settings.session_token is not None else None
        return Credentials(settings.access_key_id, settings.secret_access_key.get_secret_value(), token)
    global _default_credentials
    with _lock:
        if _default_credentials is None:
            import botocore.session

            _default_credentials = botocore.session.get_session().get_credentials()
    return _default_credentials


def signed(settings: AwsSettings, service: str, target: str, payload: dict[str, Any], indices: tuple[int, ...],
           *, purpose: str = "send") -> Request:
    """A SigV4-signed ``POST /`` of an AWS JSON 1.1 API operation."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = (settings.endpoint or f"https://{service}.{settings.awsRegion}.amazonaws.com").rstrip("/") + "/"
    body = dumps(payload)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
               "User-Agent": f"traitsync ({service})"}
    aws = AWSRequest(method="POST", url=url, data=body, headers=headers)
    creds = credentials(settings)
    if creds is not None:
        SigV4Auth(creds, service, settings.awsRegion).add_auth(aws)
    # Without any credentials the request goes unsigned: AWS answers MissingAuthenticationToken,
    # which pauses the destination like any refused credential (nothing is lost).
    return Request("POST", url, body, indices, {k: str(v) for k, v in aws.headers.items()}, authorize=False,
                   purpose=purpose)


def error_type(response: Response) -> str | None:
    """``Namespace#ResourceNotFoundException`` -> ``ResourceNotFoundException``."""
    data = response.json()
    raw = None
    if isinstance(data, dict):
        raw = data.get("__type") or data.get("code")
    raw = raw or response.header("x-amzn-errortype")
    if not raw:
        return None
    return str(raw).split("#")[-1].split(":")[0]


def item_outcome(code: str, message: str | None = None) -> Outcome:
    """One failed record/entry: throttles and internal failures retry; credentials and missing
    streams or buses pause the destination; anything else is the record's own fault."""
    if code in THROTTLED:
        return Outcome.retry(code=code, message=message)
    if code in CREDENTIALS:
        return Outcome.auth(code, message)
    return Outcome.drop(code, message)


def call_outcome(response: Response) -> Outcome:
    """A whole-call answer that is not 200: the AWS error type decides, else the status."""
    kind = error_type(response) if response.error is None else None
    if kind is not None and response.status >= 400:
        data = response.json()
        message = str(data.get("message") or data.get("Message") or "")[:200] if isinstance(data, dict) else None
        return item_outcome(kind, message or None)
    return status_outcome(response)
