"""Computation engines: the reference evaluator (the oracle), and later realtime and batch."""
