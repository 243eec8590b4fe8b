"""Identity resolution: identifiers, rules, flat matching, the worker and its safety tooling."""

from traitsync.identity.changes import ProfileChange, ProfileChanges
from traitsync.identity.config import (
    IdentityConfig,
    IdentityConfigModel,
    default_identity_config,
    identity_config_from_dict,
    load_identity_config,
)
from traitsync.identity.explain import Explanation, ViolationSummary, explain, violations, violations_table
from traitsync.identity.extract import Extracted, extract
from traitsync.identity.rebuild import RebuildReport, graph_snapshot, rebuild, snapshot
from traitsync.identity.resolver import CATEGORIES, Resolver, profile_id_for
from traitsync.identity.worker import CONSUMER, IdentityWorker, run_until_caught_up

__all__ = ["CATEGORIES", "CONSUMER", "Explanation", "Extracted", "IdentityConfig", "IdentityConfigModel",
           "IdentityWorker", "ProfileChange", "ProfileChanges", "RebuildReport", "Resolver", "ViolationSummary",
           "default_identity_config", "explain", "extract", "graph_snapshot", "identity_config_from_dict",
           "load_identity_config", "profile_id_for", "rebuild", "run_until_caught_up", "snapshot",
           "violations", "violations_table"]
