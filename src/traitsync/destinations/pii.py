"""Normalising and hashing personal data exactly as each ad platform requires.

Ad platforms match uploaded lists against their users by SHA-256 of a *normalised* value, so
the normalisation decides the match rate: ``" Jane.Doe@GMail.com "`` must hash like
``janedoe@gmail.com`` for Google and like ``jane.doe@gmail.com`` for Facebook. Every function
here is pure and vector-tested. A value that is already a 64-character hex SHA-256 passes
through unchanged (lowercased), as Segment's adapters do, so a customer who hashes upstream is
never double-hashed. Plain values never leave through a list upload: adapters call these
before building a body.

Phones go through ``phonenumbers`` (Google's libphonenumber) to E.164, with a default region
for numbers written without a country code.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import phonenumbers

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


class InvalidIdentifier(ValueError):
    """A value that cannot be normalised (a phone number with no digits, an email without @)."""


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hashed(value: str, normalise: object) -> str:
    stripped = value.strip()
    if is_sha256(stripped):
        return stripped.lower()
    assert callable(normalise)
    return sha256_hex(normalise(stripped))


def normalize_email(value: str, *, google: bool = False) -> str:
    """Trim and lowercase; for Google, also drop every dot of a gmail/googlemail local part."""
    email = value.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise InvalidIdentifier("not an email address")
    local, _, domain = email.rpartition("@")
    if google and domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def hash_email(value: str, *, google: bool = False) -> str:
    return _hashed(value, lambda v: normalize_email(v, google=google))


def e164(value: str, default_region: str = "US") -> str:
    """``+<country><number>``; numbers without a country code take ``default_region``'s."""
    text = value.strip()
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"not a phone number ({exc.error_type})") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def hash_phone_e164(value: str, default_region: str = "US") -> str:
    """Google (and DV360): SHA-256 of the E.164 form, ``+`` included."""
    return _hashed(value, lambda v: e164(v, default_region))


def facebook_phone(value: str, default_region: str = "US") -> str:
    """Facebook: digits only with the country code, no ``+`` and no leading zeros."""
    return e164(value, default_region).lstrip("+").lstrip("0")


def hash_phone_facebook(value: str, default_region: str = "US") -> str:
    return _hashed(value, lambda v: facebook_phone(v, default_region))


def normalize_name(value: str) -> str:
    """Trim, lowercase, drop punctuation and spaces (letters of any script are kept)."""
    text = unicodedata.normalize("NFC", value.strip().lower())
    return "".join(ch for ch in text if ch.isalnum())


def hash_name(value: str) -> str:
    return _hashed(value, normalize_name)


def normalize_mobile_id(value: str) -> str:
    """Mobile advertising ids (IDFA, AAID) go raw but lowercased (Facebook MADID, Google mobileId)."""
    return value.strip().lower()


def hash_mobile_id(value: str) -> str:
    """Snapchat wants advertising ids hashed: trim, lowercase, SHA-256."""
    return _hashed(value, normalize_mobile_id)
