"""Journeys as configured: a DAG of steps, each compiled to one audience (Journeys v1).

The realtime engine only ever sees the compiled :class:`~traitsync.definitions.ir.JourneyStep`
audiences; this model keeps what the config said (step keys, parents, splits, sends) so that
``journeys show``, the management API and activation can speak in the user's step names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, TypeAlias

from traitsync.config.yaml_lines import KeyPath

#: The key of every journey's entry step (reserved: no other step may use it).
ENTRY = "entry"
StepKind: TypeAlias = Literal["entry", "condition", "send", "true", "false", "branch", "random"]
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def step_computation_key(journey: str, step: str) -> str:
    """``j_o_<journey>__<step>_<suffix>``: the key the step has on profiles and in payloads.

    The six-character suffix is derived from the journey and step keys (Segment's is random),
    so the key is stable across restarts and hosts without storing it, and a step re-created
    under another journey never reuses one.
    """
    n = int.from_bytes(hashlib.sha256(f"{journey}.{step}".encode()).digest()[:8], "big")
    suffix = ""
    for _ in range(6):
        n, digit = divmod(n, 36)
        suffix += _BASE36[digit]
    return f"j_o_{journey}__{step}_{suffix}"


@dataclass(frozen=True)
class JourneyNode:
    """One step of a journey as configured; ``parents`` are step keys (empty for the entry)."""

    key: str
    computation_key: str
    kind: StepKind
    parents: tuple[str, ...]
    path: KeyPath
    name: str | None = None
    wait_seconds: int = 0
    split: str | None = None
    sends: tuple[tuple[str, KeyPath], ...] = ()


@dataclass(frozen=True)
class Journey:
    """A journey: its steps in config order (entry first) and its exit / re-entry settings."""

    key: str
    name: str | None
    steps: tuple[JourneyNode, ...]
    path: KeyPath
    exit_after_seconds: int | None = None
    reenter_after_seconds: int | None = None

    def step(self, key: str) -> JourneyNode | None:
        return next((s for s in self.steps if s.key == key), None)

    @property
    def entry(self) -> JourneyNode:
        return self.steps[0]

    @property
    def sends_exits(self) -> bool:
        """Without exit settings members never leave: no ``Audience Exited``, no list removals."""
        return self.exit_after_seconds is not None
