"""Tables of privacy and access: regulations, suppressed identifiers and management tokens.

Suppressions hold a digest of ``id_type:value``, never the value, so the list that must be kept
forever does not itself keep the person's identifier. Tokens are kept as SHA-256 digests: they
are long random strings, so a slow password hash would add latency to every management call
and no protection (there is nothing to guess).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from traitsync.store.tables import BigId, metadata

privacy_regulations = Table(
    "privacy_regulations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # delete | suppress_with_delete | suppress | unsuppress
    Column("regulation_type", String(32), nullable=False),
    Column("id_type", String(200), nullable=False),
    # The identifier in clear until the regulation is done, then only its digest.
    Column("value", Text),
    Column("digest", String(64), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at_ms", BigInteger, nullable=False),
    # pending -> exiting -> done (delete kinds); suppress kinds are done at once
    Column("status", String(16), nullable=False),
    Column("profile_ids", Text),
    Column("exit_offset", BigInteger),
    Column("finished_at_ms", BigInteger),
    Column("detail", Text),
    Index("ix_privacy_regulations_status", "status", "id"),
)

privacy_suppressions = Table(
    "privacy_suppressions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("regulation_id", BigInteger, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

management_tokens = Table(
    "management_tokens",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("revoked_at_ms", BigInteger),
)

PRIVACY_TABLES = (privacy_regulations, privacy_suppressions, management_tokens)
