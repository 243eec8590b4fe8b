"""The ``traitsync.yaml`` file as pydantic models (DESIGN 4.1).

The top level validates what every stage shares (space, sources, Profile API). The
computation definitions, identity rules and destinations are validated by their own stages
(``definitions``, ``identity``, ``destinations``) against the same located document, so each
stage owns its grammar and every error still names the file, line and key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, WithJsonSchema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRateLimit(_Strict):
    """Optional per-source request cap; excess requests get 429 with Retry-After."""

    requests_per_second: float = Field(gt=0)
    burst: int | None = Field(default=None, gt=0)


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024 * 1024}


def _parse_size(value: Any) -> Any:
    """``32KB``, ``4 MB`` or a number of bytes; KB and MB are 1,024 and 1,048,576 bytes, as Segment counts."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a size: write a number of bytes, or one with KB or MB (4MB)")
        return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
    return value


#: A size in bytes, written as a number or with a unit.
Size = Annotated[
    int, BeforeValidator(_parse_size), Field(ge=1024, le=64 * 1024 * 1024),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1024, "maximum": 64 * 1024 * 1024},
                              {"type": "string", "pattern": r"^\s*\d+\s*([Bb]|[KkMm][Bb])?\s*$"}]}),
]


class SourceLimits(_Strict):
    """Request size limits of a source: Segment's by default; RudderStack's SDKs send up to 4MB."""

    message: Size = 32 * 1024
    batch: Size = 500 * 1024


class SourceConfig(_Strict):
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str | None = None
    write_key: SecretStr
    enabled: bool = True
    rate_limit: SourceRateLimit | None = None
    limits: SourceLimits = Field(default_factory=SourceLimits)


class ProfileApiConfig(_Strict):
    """The space's access secrets; several may be valid at once, so a secret rotates without downtime."""

    access_secret: SecretStr | None = None
    access_secrets: list[SecretStr] = Field(default_factory=list)

    def secrets(self) -> list[str]:
        found = [s.get_secret_value() for s in ([self.access_secret] if self.access_secret else [])]
        return found + [s.get_secret_value() for s in self.access_secrets if s.get_secret_value() not in found]


Role = Literal["read-only", "admin"]


class TokenConfig(_Strict):
    """A named management token: give ``token_sha256`` (``traitsync tokens hash``) to keep the
    token itself out of the file, or ``token`` (often ``${VAR}``)."""

    name: str = Field(min_length=1, max_length=200)
    role: Role = "read-only"
    token: SecretStr | None = None
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class ManagementApiConfig(_Strict):
    """Bearer tokens for ``/api/v1/*``: ``token`` is an admin token named ``default``; ``tokens``
    adds named ones with roles. Tokens made with ``traitsync tokens create`` live in the store and
    work at once, without a restart. With none at all the management API answers 401 to everyone."""

    token: SecretStr | None = None
    tokens: list[TokenConfig] = Field(default_factory=list)
    public_metrics: bool = Field(default=False, description="Serve /metrics without a token (by default it "
                                 "needs one, read-only is enough: its labels name sources and destinations)")


class PrivacyConfig(_Strict):
    """``send_exits``: when a profile is deleted, send its audience exits to connected destinations."""

    send_exits: bool = True


class StorageConfig(_Strict):
    """``durability: full`` trades ingest speed for surviving power loss (synchronous=FULL)."""

    durability: Literal["normal", "full"] = "normal"


_DURATION = r"^\s*\d+\s*[smhd]\s*$"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_ms(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``14d`` -> milliseconds."""
    value = text.strip()
    return int(value[:-1].strip()) * _UNIT_SECONDS[value[-1]] * 1000


class RetentionConfig(_Strict):
    """How long operational rows are kept; the workers delete older ones in bounded steps.

    Defaults follow what reads them: the source debugger and Delivery Overview look back up to
    two weeks. Dead-lettered outbox rows are kept (``traitsync deliveries replay`` needs them),
    and the event log is kept: it is the truth everything is rebuilt from.
    """

    rejections: str = Field(default="14d", pattern=_DURATION)
    delivery_attempts: str = Field(default="14d", pattern=_DURATION)
    delivered_outbox: str = Field(default="14d", pattern=_DURATION, description="Delivered and filtered rows")
    computation_results: str = Field(default="30d", pattern=_DURATION, description="Only rows activation has read")
    every: str = Field(default="1m", pattern=_DURATION, description="How often the workers run it")
    batch: int = Field(default=5000, ge=1, le=1_000_000, description="Most rows deleted per table per run")


class EngineConfig(_Strict):
    """The realtime engine. On PostgreSQL its work is split into ``partitions`` by profile and the
    worker processes (on any number of machines) each take an even share; every worker of one
    store must use the same number. SQLite always runs one engine for all profiles.

    The default is one partition (one engine, other workers standing by) because each partition
    is its own transaction per round: on one machine, 16 partitions cost about twice the time of
    one at a low event rate. Set 16 (or more) to share the engine among machines."""

    partitions: int = Field(default=1, ge=1, le=1024)


class AccountsConfig(_Strict):
    """Accounts (B2B): how ``group`` calls link users to accounts.

    ``many`` (the default, as Segment): a user belongs to every account it was ever grouped with.
    ``latest``: a ``group`` call to another account moves the user, ending its earlier links.
    """

    membership: Literal["many", "latest"] = Field(
        default="many", description="many: a user stays in every account it was grouped with; latest: a group "
                                    "call to another account ends the user's earlier links")


class TraitsyncConfig(_Strict):
    space_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    sources: list[SourceConfig] = Field(default_factory=list)
    profile_api: ProfileApiConfig | None = None
    management_api: ManagementApiConfig | None = None
    storage: StorageConfig = Field(default_factory=StorageConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    accounts: AccountsConfig = Field(default_factory=AccountsConfig)
    identity: dict[str, Any] | None = None
    computed_traits: list[dict[str, Any]] = Field(default_factory=list)
    audiences: list[dict[str, Any]] = Field(default_factory=list)
    journeys: list[dict[str, Any]] = Field(default_factory=list)
    sql_traits: list[dict[str, Any]] = Field(default_factory=list)
    destinations: list[dict[str, Any]] = Field(default_factory=list)

    def source_by_write_key(self) -> dict[str, SourceConfig]:
        return {s.write_key.get_secret_value(): s for s in self.sources}
