"""Privacy: regulations (delete, suppress, unsuppress) and end-user consent.

It comes after every stage in the flow because a deletion reaches into all of them, each
through the tables that stage owns; ingest enforces suppressions, activation enforces consent.
"""

from traitsync.privacy.regulations import REGULATION_TYPES, Regulation, list_regulations, parse_subject, request
from traitsync.privacy.worker import PrivacyWorker

__all__ = ["REGULATION_TYPES", "PrivacyWorker", "Regulation", "list_regulations", "parse_subject", "request"]
