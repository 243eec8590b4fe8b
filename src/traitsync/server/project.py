"""The config resolved once into one typed whole, which every stage receives its part of.

``traitsync.yaml`` is read and validated once (``config.load_config``); this module resolves
it against each stage's own schema: identity rules, definitions, destinations with their
connections, and the delivery targets. Stages never see the YAML document: the identity
worker gets ``IdentityConfig``, the engine ``Definitions``, activation ``ActivationConfig``,
delivery one ``DeliveryTarget`` per destination. Errors name the file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass

from traitsync.activation.config import ActivationConfig, load_activation
from traitsync.compute.batch.sql_traits import SqlTraitConfig, load_sql_traits
from traitsync.config import LoadedConfig, load_config
from traitsync.definitions import Definitions, load_definitions
from traitsync.delivery.target import DeliveryTarget
from traitsync.identity import IdentityConfig, load_identity_config


@dataclass(frozen=True)
class Project:
    loaded: LoadedConfig
    identity: IdentityConfig
    definitions: Definitions
    activation: ActivationConfig
    delivery: tuple[DeliveryTarget, ...]
    sql_traits: tuple[SqlTraitConfig, ...] = ()

    @property
    def space_id(self) -> str:
        return self.loaded.config.space_id

    def target(self, destination_id: str) -> DeliveryTarget | None:
        return next((t for t in self.delivery if t.destination_id == destination_id), None)


def resolve_project(loaded: LoadedConfig) -> Project:
    """Resolve every stage's section; raises ``ConfigError`` at the first problem."""
    definitions = load_definitions(loaded.document)
    activation = load_activation(loaded, definitions)
    return Project(loaded=loaded, identity=load_identity_config(loaded.document), definitions=definitions,
                   activation=activation,
                   delivery=tuple(DeliveryTarget.of(d.resolved) for d in activation.destinations),
                   sql_traits=tuple(load_sql_traits(loaded.document)))


def load_project(path: str | None = None) -> Project:
    return resolve_project(load_config(path))
