"""A validated set of definitions: lookup by key, dependencies, and a dependencies-first order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from traitsync.definitions.ir import Audience, ComputedTrait, Definition, JourneyStep
from traitsync.definitions.journey_model import Journey


class Definitions(Mapping[str, Definition]):
    """All computed traits and audiences of one config, iterated dependencies first.

    A mapping so that evaluators can take "anything keyed by computation key"; ``order`` is
    what a batch run follows so a referenced trait or audience is computed before its readers.
    """

    def __init__(self, definitions: Iterable[Definition], *, journeys: Iterable[Journey] = ()) -> None:
        items = list(definitions)
        #: Journeys by key; their steps are among the definitions (keyed ``j_o_...``).
        self.journeys: dict[str, Journey] = {j.key: j for j in journeys}
        self._by_key: dict[str, Definition] = {d.key: d for d in items}
        if len(self._by_key) != len(items):
            raise ValueError("duplicate definition keys")
        self._deps: dict[str, frozenset[str]] = {
            d.key: frozenset(k for k in d.depends_on() if k in self._by_key) for d in items
        }
        self.order: tuple[str, ...] = _topological([d.key for d in items], self._deps)

    @property
    def computed_traits(self) -> tuple[ComputedTrait, ...]:
        return tuple(d for d in self._by_key.values() if isinstance(d, ComputedTrait))

    @property
    def audiences(self) -> tuple[Audience, ...]:
        return tuple(d for d in self._by_key.values() if isinstance(d, Audience))

    def __getitem__(self, key: str) -> Definition:
        return self._by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def journey_steps(self) -> tuple[JourneyStep, ...]:
        return tuple(d for d in self._by_key.values() if isinstance(d, JourneyStep))

    def resolve(self, name: str) -> str | None:
        """A computation key from a key or a journey step (``<journey>.<step>``); None if neither."""
        if name in self._by_key:
            return name
        journey, _, step = name.partition(".")
        node = self.journeys[journey].step(step) if journey in self.journeys else None
        return None if node is None else node.computation_key

    def dependencies(self, key: str) -> frozenset[str]:
        """Keys of the defined computations that ``key`` reads directly."""
        return self._deps[key]

    def consumers(self, key: str) -> frozenset[str]:
        """Keys of the computations that read ``key`` directly (the builder's "Consumers" tab)."""
        return frozenset(k for k, deps in self._deps.items() if key in deps)

    def reading_event(self, event: str) -> tuple[str, ...]:
        """Computations (in order) whose value can change when ``event`` arrives, directly or not."""
        touched = {k for k, d in self._by_key.items() if event in d.events_read()}
        for key in self.order:
            if self._deps[key] & touched:
                touched.add(key)
        return tuple(k for k in self.order if k in touched)

    def __repr__(self) -> str:
        return f"Definitions({list(self.order)!r})"


def find_cycle(keys: list[str], deps: Mapping[str, frozenset[str]]) -> list[str] | None:
    """The first cycle (in ``keys`` order) as a list of keys, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        stack.append(key)
        for dep in sorted(deps.get(key, frozenset()), key=keys.index):
            if state.get(dep) == 1:
                return stack[stack.index(dep):]
            if dep not in state:
                found = visit(dep)
                if found is not None:
                    return found
        stack.pop()
        state[key] = 2
        return None

    for key in keys:
        if key not in state:
            found = visit(key)
            if found is not None:
                return found
    return None


def _topological(keys: list[str], deps: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    if find_cycle(keys, deps) is not None:
        raise ValueError("definitions reference each other in a cycle")
    done: list[str] = []
    seen: set[str] = set()

    def place(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        for dep in sorted(deps[key], key=keys.index):
            place(dep)
        done.append(key)

    for key in keys:
        place(key)
    return tuple(done)
