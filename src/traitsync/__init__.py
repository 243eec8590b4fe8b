"""traitsync: Computed Traits and Audiences, computed in real time and activated to destinations."""

__version__ = "0.1.0"
