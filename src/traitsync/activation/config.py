"""Resolve ``destinations:`` against the definitions into what activation runs (DESIGN 4.1).

``destinations/config.py`` validates each entry against its adapter; this module adds what
needs the computations too: every connection names a known computed trait or audience, a list
destination only carries audiences (segment-spec 5.1: "List destinations can only receive
Audiences"), and each connection becomes a ``ConnectionSettings`` with the definition's
``historical`` and anonymous-user options.

**Event or list?** An adapter that speaks only one of the two decides it. An adapter that
speaks both (``webhook``, ``jsonl``) is a list destination when its entry has ``schedule:``
(only list syncs have a cadence) and an event destination otherwise; the destination config
model has no separate ``mode`` key, and ``schedule`` already means "sync a list on this clock".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from traitsync.activation.types import ActivationTarget, ComputationRef, ConnectionSettings
from traitsync.config import KeyPath, LoadedConfig, LocatedDocument
from traitsync.definitions import Definitions
from traitsync.definitions.ir import Audience, Definition, JourneyStep
from traitsync.destinations.config import LinkConfig, ResolvedDestination, parse_destinations
from traitsync.destinations.registry import default_rate

Mode = Literal["event", "list"]


def _name_of(definition: Definition) -> str:
    if definition.name:
        return definition.name
    return definition.key.replace("_", " ").title()


def computation_ref(definition: Definition) -> ComputationRef:
    """The ``context.personas`` identity of a definition (id ``tra_``/``aud_``, key, name)."""
    kind: Literal["trait", "audience"] = "audience" if isinstance(definition, Audience) else "trait"
    return ComputationRef(id=definition.id, key=definition.key, kind=kind, name=_name_of(definition),
                          level=definition.options.level)


@dataclass(frozen=True)
class DestinationLink:
    """One computation connected to one destination (an entry of its ``connections:``)."""

    computation: ComputationRef
    settings: ConnectionSettings
    path: KeyPath
    enrich_traits: tuple[str, ...] = ()
    #: The journey of a journey step: a user reaching this destination from two of its steps is
    #: sent once; without exit settings (``journey_exits`` False) no exit is sent.
    journey: str | None = None
    journey_exits: bool = True


@dataclass(frozen=True)
class ActivationDestination:
    """A destination as activation and delivery run it."""

    resolved: ResolvedDestination
    mode: Mode
    target: ActivationTarget
    links: tuple[DestinationLink, ...]
    interval_s: float
    batch_size: int

    @property
    def min_audience_size(self) -> int:
        """A new list is held until the audience has this many members (0: never held)."""
        return self.resolved.min_audience_size if self.mode == "list" else 0

    @property
    def required_traits(self) -> frozenset[str]:
        """Profile traits the adapter needs on every item (the seeds' "additional identifiers")."""
        return self.resolved.adapter.required_traits

    @property
    def id(self) -> str:
        return self.resolved.config.id

    @property
    def consent_categories(self) -> tuple[str, ...]:
        """Categories a profile must allow for this destination to receive anything about it."""
        return tuple(self.resolved.config.consent_categories)

    @property
    def name(self) -> str:
        return self.resolved.display_name

    @property
    def takes_group(self) -> bool:
        """Whether the adapter accepts ``group`` calls (the webhook, Segment, streams do; Braze does not)."""
        return "group" in self.resolved.adapter.event_types

    def links_for(self, computation_key: str) -> list[DestinationLink]:
        return [c for c in self.links if c.computation.key == computation_key]


@dataclass(frozen=True)
class ActivationConfig:
    space_id: str
    destinations: tuple[ActivationDestination, ...]

    def by_id(self) -> dict[str, ActivationDestination]:
        return {d.id: d for d in self.destinations}

    @property
    def event_destinations(self) -> tuple[ActivationDestination, ...]:
        return tuple(d for d in self.destinations if d.mode == "event")

    @property
    def list_destinations(self) -> tuple[ActivationDestination, ...]:
        return tuple(d for d in self.destinations if d.mode == "list")

    def event_links(self) -> dict[str, list[tuple[ActivationDestination, DestinationLink]]]:
        """computation key -> every (event destination, link) it feeds."""
        out: dict[str, list[tuple[ActivationDestination, DestinationLink]]] = {}
        for dest in self.event_destinations:
            for link in dest.links:
                out.setdefault(link.computation.key, []).append((dest, link))
        return out


def destination_mode(resolved: ResolvedDestination) -> Mode:
    modes = resolved.adapter.modes
    if "list" not in modes:
        return "event"
    if "event" not in modes:
        return "list"
    return "list" if resolved.config.schedule is not None else "event"


def _settings(conn: LinkConfig, definition: Definition) -> ConnectionSettings:
    return ConnectionSettings(
        send_identify="identify" in conn.send,
        send_track="track" in conn.send,
        send_group="group" in conn.send,
        trait_event_name=conn.trait_event_name,
        entered_event_name=conn.entered_event_name,
        exited_event_name=conn.exited_event_name,
        id_sync=dict(conn.id_sync) if conn.id_sync is not None else None,
        include_anonymous=conn.include_anonymous or definition.options.include_anonymous,
        historical=definition.options.historical,
    )


def load_activation(loaded: LoadedConfig, definitions: Definitions) -> ActivationConfig:
    """Every destination with its resolved connections; raises ``ConfigError`` (file:line:key)."""
    doc = loaded.document
    data: Mapping[str, Any] = doc.data if isinstance(doc.data, dict) else {}
    resolved = parse_destinations(doc, data.get("destinations"))
    from traitsync.compute.batch.sql_traits import load_sql_traits

    sql_traits = {t.key: t for t in load_sql_traits(doc)}
    space_id = loaded.config.space_id
    out: list[ActivationDestination] = []
    for i, dest in enumerate(resolved):
        mode = destination_mode(dest)
        links: list[DestinationLink] = []
        seen: set[str] = set()
        for j, conn in _connections(dest, i, definitions):
            path: KeyPath = ("destinations", i, "connections", j) if isinstance(j, int) else j
            key = definitions.resolve(conn.computation)
            definition = definitions.get(key) if key is not None else None
            sql_trait = sql_traits.get(conn.computation)
            if definition is None and sql_trait is not None:
                if conn.computation in seen:
                    raise doc.error((*path, "computation"), f"{conn.computation!r} is connected twice to "
                                    f"destination {dest.config.id!r}; one connection per computation")
                seen.add(conn.computation)
                if mode != "event" or set(conn.send) != {"identify"}:
                    raise doc.error((*path, "send"), f"SQL trait {conn.computation!r} is sent as identify only "
                                    "(send: [identify]) to an event destination")
                ref = ComputationRef(id=sql_trait.id, key=sql_trait.key, kind="trait",
                                     name=sql_trait.name or sql_trait.key.replace("_", " ").title(), spread=True)
                links.append(DestinationLink(ref, ConnectionSettings(send_identify=True, send_track=False,
                                                                     include_anonymous=conn.include_anonymous,
                                                                     id_sync=dict(conn.id_sync)
                                                                     if conn.id_sync is not None else None),
                                             path, tuple(conn.enrich_traits)))
                continue
            if definition is None:
                raise doc.error((*path, "computation"), f"unknown computation {conn.computation!r}; "
                                f"connect a computed trait, audience, journey step or SQL trait "
                                f"({_known(definitions, sql_traits)})")
            if definition.key in seen:
                raise doc.error((*path, "computation"), f"{conn.computation!r} is connected twice to "
                                f"destination {dest.config.id!r}; one connection per computation")
            seen.add(definition.key)
            if mode == "list" and not isinstance(definition, Audience):
                raise doc.error((*path, "computation"), f"computed trait {conn.computation!r} cannot go to "
                                f"list destination {dest.config.id!r}: list destinations only receive "
                                "audiences; connect it to an event destination (identify or track)")
            if mode == "event":
                _check_send(doc, (*path, "send"), dest, definition, conn)
            journey = definitions.journeys[definition.rule.journey] if isinstance(definition, JourneyStep) else None
            settings = _settings(conn, definition)
            if journey is not None:
                # Later steps read no event history, but a destination connected to one still gets
                # its current members on first sync unless the journey itself is not historical.
                entry = definitions[journey.entry.computation_key]
                settings = replace(settings, historical=entry.options.historical)
            links.append(DestinationLink(computation_ref(definition), settings, path,
                                         tuple(conn.enrich_traits), journey=journey.key if journey else None,
                                         journey_exits=journey.sends_exits if journey else True))
        target = ActivationTarget(destination_id=dest.config.id, destination_name=dest.display_name,
                                  space_id=space_id)
        # Event destinations: messages per request; list destinations: members per list operation.
        ceiling = dest.adapter.list_batch if mode == "list" else dest.adapter.max_batch
        batch = min(dest.config.batch_size or ceiling, ceiling)
        out.append(ActivationDestination(resolved=dest, mode=mode, target=target, links=tuple(links),
                                         interval_s=dest.list_interval_s, batch_size=batch))
    _check_journey_sends(loaded, definitions, {d.id for d in out})
    return ActivationConfig(space_id=space_id, destinations=tuple(out))


def _check_send(doc: LocatedDocument, path: KeyPath, dest: ResolvedDestination, definition: Definition,
                conn: LinkConfig) -> None:
    """``send`` of an event connection: group only for account-level computations (one call per
    account), identify/track for both levels (per member user on an account computation)."""
    send = set(conn.send)
    account = definition.options.level == "account"
    if "group" in send and not account:
        raise doc.error(path, f"send: group needs an account-level computation (level: account); "
                        f"{definition.key!r} is user-level: use identify and/or track")
    if "group" in send and "group" not in dest.adapter.event_types:
        takes = ", ".join(sorted(dest.adapter.event_types & {"identify", "track"})) or "no Engage calls"
        raise doc.error(path, f"destination {dest.config.id!r} ({dest.config.kind}) does not take group calls "
                        f"(it takes {takes}); send the account computation per member user instead")
    if not ({"identify", "track"} & send) and not (account and "group" in send):
        wanted = "group, identify or track" if account else "identify or track"
        raise doc.error(path, f"send must include {wanted}")


def _known(definitions: Definitions, sql_traits: Mapping[str, Any]) -> str:
    names = [k for k in definitions if not isinstance(definitions[k], JourneyStep)] + list(sql_traits)
    names += [f"{j.key}.{s.key}" for j in definitions.journeys.values() for s in j.steps]
    return ", ".join(sorted(names)) or "none are defined"


def _connections(dest: ResolvedDestination, index: int, definitions: Definitions
                 ) -> list[tuple[int | KeyPath, LinkConfig]]:
    """The destination's ``connections:`` plus the journey steps that name it in ``send:``.

    A step's ``send: [dst]`` is the same as ``{computation: journey.step, send: [identify,
    track]}`` on that destination (both messages, as the seeds' journey events show).
    """
    out: list[tuple[int | KeyPath, LinkConfig]] = list(enumerate(dest.config.connections))
    for journey in definitions.journeys.values():
        for step in journey.steps:
            for dest_id, path in step.sends:
                if dest_id == dest.config.id:
                    out.append(((*path[:-2], "send"), LinkConfig(computation=f"{journey.key}.{step.key}",
                                                                 send=["identify", "track"])))
    return out


def _check_journey_sends(loaded: LoadedConfig, definitions: Definitions, known: set[str]) -> None:
    for journey in definitions.journeys.values():
        for step in journey.steps:
            for dest_id, path in step.sends:
                if dest_id not in known:
                    raise loaded.document.error(path, f"unknown destination {dest_id!r} "
                                                      f"(destinations: {', '.join(sorted(known)) or 'none'})")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def validate_destinations_section(loaded: LoadedConfig, definitions: Definitions) -> list[str]:
    """Summary lines for ``traitsync validate``; raises ``ConfigError`` on the first problem."""
    config = load_activation(loaded, definitions)
    lines = [f"destinations: {len(config.event_destinations)} event, {len(config.list_destinations)} list"]
    for dest in config.destinations:
        keys = ", ".join(c.computation.key for c in dest.links) or "no connections"
        rate = dest.resolved.config.rate_limit
        detail = f"{rate if rate is not None else default_rate(dest.resolved.adapter):g} req/s"
        if dest.mode == "list":
            detail += f", every {_duration(dest.interval_s)}"
            wanted = dest.resolved.config.schedule
            if wanted is not None and wanted.seconds < dest.interval_s:
                detail += f" (schedule {wanted.every} raised to the {dest.resolved.adapter.name} floor)"
        lines.append(f"  {dest.id} ({dest.resolved.config.kind}, {dest.mode}, {detail}): {keys}")
    return lines
