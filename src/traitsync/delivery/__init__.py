"""Delivery: the outbox, per-destination rate limits, retries, dead letter and stats.

Kept import-light on purpose: ``destinations/`` imports ``delivery.classify``, and delivery's
worker imports the adapters, so this package's ``__init__`` must not import the worker.
Import ``traitsync.delivery.outbox`` / ``.worker`` / ``.overview`` directly.
"""

from traitsync.delivery.classify import AUTH, DROP, OK, RETRY, Status, classify_status

__all__ = ["AUTH", "DROP", "OK", "RETRY", "Status", "classify_status"]
