"""What a member user holds of an account computation (``activation.accounts.member_value``)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from traitsync.activation.accounts import is_account, link_change_user, member_value

linked_st = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["acc_a", "acc_b", "acc_c"]),
                               st.one_of(st.none(), st.booleans(), st.integers(0, 3))),
                     max_size=4, unique_by=lambda row: row[1])


def test_audience_membership_is_any_matching_account() -> None:
    assert member_value("audience", []) is False
    assert member_value("audience", [(1, "acc_a", False), (2, "acc_b", None)]) is False
    assert member_value("audience", [(1, "acc_a", False), (2, "acc_b", True)]) is True


def test_a_trait_takes_the_latest_linked_account_with_a_value() -> None:
    assert member_value("trait", []) is None
    assert member_value("trait", [(5, "acc_a", 3), (9, "acc_b", None)]) == 3
    assert member_value("trait", [(5, "acc_a", 3), (9, "acc_b", 7)]) == 7
    assert member_value("trait", [(5, "acc_b", 3), (5, "acc_a", 7)]) == 3  # same time: the larger account id


@given(linked=linked_st)
def test_the_order_of_the_links_does_not_matter(linked: list[tuple[int, str, Any]]) -> None:
    for kind in ("audience", "trait"):
        assert member_value(kind, linked) == member_value(kind, list(reversed(linked)))  # type: ignore[arg-type]


def test_link_changes_name_the_user_whichever_side_it_is_on() -> None:
    assert is_account("acc_1") and not is_account("use_1") and not is_account(None)
    assert link_change_user("unlinked", "acc_1", "use_1") == "use_1"  # identity's form: the account first
    assert link_change_user("linked", "acc_1", "use_1") == "use_1"
    assert link_change_user("unlinked", "use_1", "acc_1") == "use_1"
    assert link_change_user("link_removed", "acc_1", "use_1") == "use_1"
    assert link_change_user("merged", "use_1", "use_2") is None
    assert link_change_user("identifier_added", "use_1", None) is None
    assert link_change_user("unlinked", "use_1", None) is None
