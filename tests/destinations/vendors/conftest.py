"""Vendor adapter tests share the delivery harness (``tests/destinations/harness.py``)."""

from tests.destinations.harness import harness

__all__ = ["harness"]
