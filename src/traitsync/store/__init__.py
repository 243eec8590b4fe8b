"""Storage shared by every stage: the database interface, the tables and their migrations."""

from traitsync.store.database import Capabilities, Connection, Database, database_url_from_env
from traitsync.store.migrate import migrate

__all__ = ["Capabilities", "Connection", "Database", "database_url_from_env", "migrate"]
