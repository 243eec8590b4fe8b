"""Tables of activation and delivery: the outbox, its attempt log, and what destinations hold.

``delivery_outbox`` is the transactional outbox and the delivery state machine in one table
(STYLE rule 6): activation inserts rows in the same transaction that records its results,
workers move them pending -> in_flight -> delivered | retry_wait -> dead. ``terminal`` is
true for delivered, dead and filtered, so "is anything ahead of me for this key" is one
indexed predicate. Every attempt appends a ``delivery_attempts`` row (rudder-server's job
status rows) for the debugger and the retry counts.

``activation_snapshots`` and ``activation_list_members`` hold what each destination last
*confirmed* (``activation/diff.py`` Snapshot and list membership); they move forward only
when delivery confirms: a delivered row has ``applied`` false until activation has folded it
into them (confirmation travels as data activation reads, never as a call back up).

``delivery_destination_state`` is one row per destination shared by every process that delivers
to it: the rate limiter's grant log (so the cap holds across processes), its adaptive rate and
429 pause, and an auth pause after bad credentials.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from traitsync.store.tables import BigId, metadata

delivery_outbox = Table(
    "delivery_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("destination_id", String(200), nullable=False),
    # Messages with the same order key are delivered in id order (normally the profile id).
    Column("order_key", String(300), nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("message_type", String(32), nullable=False),
    Column("computation_id", String(200)),
    Column("state", String(16), nullable=False),
    Column("terminal", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("first_attempt_at_ms", BigInteger),
    Column("next_attempt_at_ms", BigInteger, nullable=False),
    Column("last_attempt_at_ms", BigInteger),
    Column("finished_at_ms", BigInteger),
    Column("lease_until_ms", BigInteger),
    Column("last_error_code", String(64)),
    Column("last_error", Text),
    Column("body", Text, nullable=False),
    Column("meta", Text),
    Column("result", Text),
    # What the adapter sees besides the message: {"previous": {...}, "traits": {...}} (activation's).
    Column("adapter_input", Text),
    # Delivered and not yet folded into activation's snapshots / list membership.
    Column("applied", Boolean, nullable=False, server_default=text("false")),
    # Enqueue is idempotent per destination: a re-run of activation re-inserts nothing.
    UniqueConstraint("destination_id", "message_id", name="uq_delivery_outbox_message"),
)

Index("ix_delivery_outbox_due", delivery_outbox.c.destination_id, delivery_outbox.c.state,
      delivery_outbox.c.next_attempt_at_ms)
Index("ix_delivery_outbox_key", delivery_outbox.c.destination_id, delivery_outbox.c.order_key,
      delivery_outbox.c.id)
Index("ix_delivery_outbox_created", delivery_outbox.c.destination_id, delivery_outbox.c.created_at_ms)
Index("ix_delivery_outbox_unapplied", delivery_outbox.c.applied, delivery_outbox.c.state, delivery_outbox.c.id)
# Partial indexes over unfinished rows only: claims and due times stay fast however many delivered
# rows a destination has accumulated. Queries spell the predicate exactly so (``OPEN_ROWS_SQL``):
# SQLite uses a partial index only when the query repeats its condition term for term.
OPEN_ROWS_SQL = {"sqlite": "terminal = 0", "postgresql": "terminal = false"}
Index("ix_delivery_outbox_open", delivery_outbox.c.destination_id, delivery_outbox.c.id,
      sqlite_where=text(OPEN_ROWS_SQL["sqlite"]), postgresql_where=text(OPEN_ROWS_SQL["postgresql"]))
Index("ix_delivery_outbox_open_key", delivery_outbox.c.destination_id, delivery_outbox.c.order_key,
      delivery_outbox.c.id, sqlite_where=text(OPEN_ROWS_SQL["sqlite"]),
      postgresql_where=text(OPEN_ROWS_SQL["postgresql"]))

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("http_status", Integer),
    Column("outcome", String(16), nullable=False),
    Column("code", String(64)),
    Column("detail", Text),
    # Every HTTP request the attempt made (token fetches and lookups included), secrets redacted:
    # [{"method", "url", "status", "error", "duration_ms", "purpose"}].
    Column("requests", Text),
    Index("ix_delivery_attempts_outbox", "outbox_id", "attempt"),
)

delivery_destination_state = Table(
    "delivery_destination_state",
    metadata,
    Column("destination_id", String(200), primary_key=True),
    # JSON list of the last ``cap`` grant times (ms), oldest first: the shared sliding-window log.
    Column("grants", Text, nullable=False),
    Column("blocked_until_ms", BigInteger, nullable=False),
    Column("current_rate", Float, nullable=False),
    Column("paused_until_ms", BigInteger, nullable=False),
    Column("pause_code", String(64)),
    Column("updated_at_ms", BigInteger, nullable=False),
)

activation_snapshots = Table(
    "activation_snapshots",
    metadata,
    Column("destination_id", String(200), primary_key=True),
    Column("profile_id", String(300), primary_key=True),
    Column("computation_id", String(200), primary_key=True),
    Column("value", Text),
    Column("identifiers", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

activation_list_members = Table(
    "activation_list_members",
    metadata,
    Column("destination_id", String(200), primary_key=True),
    Column("computation_id", String(200), primary_key=True),
    Column("id_type", String(64), primary_key=True),
    Column("id_value", String(500), primary_key=True),
    Column("profile_id", String(300), nullable=False),
    Column("added_at_ms", BigInteger, nullable=False),
)

ALL_TABLES = (delivery_outbox, delivery_attempts, activation_snapshots, activation_list_members)
PLATFORM_TABLES = (delivery_destination_state,)
