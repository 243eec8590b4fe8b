"""Delivery: the outbox, per-destination rate limits, credentials, retries, dead letter and stats.

Delivery runs the adapters of ``traitsync.destinations`` and nothing above it: activation
enqueues through ``Outbox`` and reads confirmations through ``receipts``; delivery never calls
back up. Import the modules directly (``traitsync.delivery.outbox``, ``.worker``, ...).
"""
