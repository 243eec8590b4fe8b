"""Hash vectors for tricky inputs: what each ad platform matches against."""

from __future__ import annotations

import hashlib

import pytest

from traitsync.destinations.pii import (
    InvalidIdentifier,
    e164,
    facebook_phone,
    hash_email,
    hash_mobile_id,
    hash_name,
    hash_phone_e164,
    hash_phone_facebook,
    normalize_email,
    normalize_name,
)


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("raw", "facebook", "google"), [
    ("  Jane.Doe@Example.COM ", "jane.doe@example.com", "jane.doe@example.com"),
    ("Jane.Doe+ads@GMail.com", "jane.doe+ads@gmail.com", "janedoe+ads@gmail.com"),
    ("j.a.n.e@googlemail.com", "j.a.n.e@googlemail.com", "jane@googlemail.com"),
    ("first.last@sub.gmail.com.au", "first.last@sub.gmail.com.au", "first.last@sub.gmail.com.au"),
])
def test_email_normalisation_per_vendor(raw: str, facebook: str, google: str) -> None:
    assert normalize_email(raw) == facebook and hash_email(raw) == h(facebook)
    assert normalize_email(raw, google=True) == google and hash_email(raw, google=True) == h(google)


def test_known_vector_and_pre_hashed_values_pass_untouched() -> None:
    # SHA-256("test@example.com"), the vector in the vendors' docs.
    assert hash_email(" Test@Example.com") == "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    pre = "973DFE463EC85785F5F95AF5BA3906EEDB2D931C24E69824A89EA65DBA4E813B"
    assert hash_email(pre) == pre.lower() and hash_phone_e164(pre) == pre.lower() and hash_name(pre) == pre.lower()


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("(650) 555-1234", "US", "+16505551234"),
    ("650.555.1234", "US", "+16505551234"),
    ("+44 20 7946 0958", "US", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("0044 20 7946 0958", "GB", "+442079460958"),
    ("+49 (0)30 123456", "US", "+4930123456"),
])
def test_phones_to_e164(raw: str, region: str, expected: str) -> None:
    assert e164(raw, region) == expected
    assert hash_phone_e164(raw, region) == h(expected)
    assert facebook_phone(raw, region) == expected[1:]
    assert hash_phone_facebook(raw, region) == h(expected[1:])


@pytest.mark.parametrize("bad", ["", "n/a", "12", "+1 000"])
def test_impossible_phones_are_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        e164(bad)


def test_names_and_mobile_ids() -> None:
    assert normalize_name("  O'Brien-Smith ") == "obriensmith"
    assert normalize_name("Zoë") == "zoë" and hash_name("Zoë ") == h("zoë")
    assert hash_mobile_id(" 6D92078A-8246-4BA4-AE5B-76104861E7DC ") == h("6d92078a-8246-4ba4-ae5b-76104861e7dc")
    with pytest.raises(InvalidIdentifier):
        normalize_email("not-an-email")
