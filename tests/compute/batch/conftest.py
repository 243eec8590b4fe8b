"""Fixtures borrowed from the activation flow tests: a store, a recording webhook receiver, a Flow."""

from tests.activation_flow.conftest import db, flow_factory  # noqa: F401  (fixtures)
from tests.delivery.conftest import pg_db, receiver, sqlite_db  # noqa: F401  (fixtures)
