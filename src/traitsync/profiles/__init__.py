"""The profile store's read side and the Segment-compatible Profile API."""

from traitsync.profiles.api import ComputedValues, profile_api_router
from traitsync.profiles.store import DeleteRefused, ExternalId, ProfileEvent, ProfileStore, Trait

__all__ = ["ComputedValues", "DeleteRefused", "ExternalId", "ProfileEvent", "ProfileStore", "Trait",
           "profile_api_router"]
