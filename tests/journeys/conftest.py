"""Journey tests reuse the engine harness (fake clock) and delivery's local receiver and databases."""

from __future__ import annotations

from tests.compute.realtime.conftest import harness_factory  # noqa: F401  (fixture)
from tests.delivery.conftest import Receiver, pg_db, receiver, sqlite_db  # noqa: F401  (fixtures)
