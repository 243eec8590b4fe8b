"""Identifier fan-out and ID Sync strategies."""

from __future__ import annotations

import pytest

from traitsync.activation.ids import primary_identity, select_identifiers, validate_id_sync
from traitsync.activation.types import Identifier

U1, U2 = Identifier("user_id", "u1"), Identifier("user_id", "u2")
E1, E2 = Identifier("email", "a@x.io"), Identifier("email", "b@x.io")
A1, A2 = Identifier("anonymous_id", "an1"), Identifier("anonymous_id", "an2")
PHONE = Identifier("phone", "+15550100")
ALL = [A1, U1, E1, A2, E2, U2, PHONE]


def test_default_sends_every_user_id_and_email_not_anonymous_or_custom() -> None:
    assert select_identifiers(ALL) == [U1, U2, E1, E2]


def test_include_anonymous_adds_each_anonymous_id() -> None:
    assert select_identifiers(ALL, include_anonymous=True) == [U1, U2, E1, E2, A1, A2]


@pytest.mark.parametrize(("strategy", "expected"), [("first", [E1]), ("last", [E2]), ("all", [E1, E2])])
def test_id_sync_strategies(strategy: str, expected: list[Identifier]) -> None:
    assert select_identifiers(ALL, id_sync={"email": strategy}) == expected  # type: ignore[dict-item]


def test_id_sync_sends_custom_types_and_keeps_mapping_order() -> None:
    assert select_identifiers(ALL, id_sync={"phone": "all", "user_id": "last"}) == [PHONE, U2]
    assert select_identifiers(ALL, id_sync={"anonymous_id": "all"}) == []
    assert select_identifiers(ALL, id_sync={"anonymous_id": "first"}, include_anonymous=True) == [A1]


def test_at_most_three_all_strategies() -> None:
    validate_id_sync({"a": "all", "b": "all", "c": "all", "d": "last"})
    with pytest.raises(ValueError, match="at most 3"):
        select_identifiers(ALL, id_sync={"a": "all", "b": "all", "c": "all", "d": "all"})
    with pytest.raises(ValueError, match="strategy"):
        validate_id_sync({"a": "newest"})  # type: ignore[dict-item]


def test_duplicates_and_empty_values_are_ignored() -> None:
    assert select_identifiers([E1, E1, Identifier("email", ""), U1]) == [U1, E1]


def test_primary_identity() -> None:
    assert primary_identity(ALL, "p") == ("userId", "u2")
    assert primary_identity([A1, A2, E1], "p") == ("anonymousId", "an2")
    assert primary_identity([E1], "p") == ("anonymousId", "p")
