"""Registry: kind names, the seeds' rate table, and the base helpers."""

from __future__ import annotations

import pytest

from traitsync.destinations.base import Outcome, Response, classify_by_status, items_of, parse_retry_after
from traitsync.destinations.registry import ADAPTERS, VENDOR_RATES, default_rate, get_destination, vendor_rate
from traitsync.errors import ConfigError

SEEDS_TABLE = {
    "Braze": 100, "Customer.io": 30, "Hubspot": 5, "Intercom": 8, "Iterable": 500, "Mailchimp": 10,
    "Marketo": 5, "Marketo Static Lists": 5, "Pardot": 2, "Resci": 200, "Responsys": 3, "Responsys Batch": 3,
    "Sendgrid": 100, "Sendgrid Lists": 100, "Salesforce": 5, "Salesforce Marketing Cloud": 20,
    "Salesforce Marketing Cloud Lists": 20, "Zendesk": 50,
}


def test_rate_table_matches_the_seeds() -> None:
    assert {name: cap.per_second for name, cap in VENDOR_RATES.items()} == SEEDS_TABLE
    hubspot = vendor_rate("HubSpot")
    assert hubspot is not None and hubspot.calls_per_object == 2 and hubspot.requests_per_second == 10
    assert vendor_rate("braze") == VENDOR_RATES["Braze"]
    assert vendor_rate("Nope") is None


def test_kinds_and_unknown_kind() -> None:
    assert {"jsonl", "segment", "webhook"} <= set(ADAPTERS)
    assert get_destination("webhook").name == "Webhook"
    known = ", ".join(sorted(ADAPTERS))
    with pytest.raises(ConfigError) as info:
        get_destination("brase")
    assert str(info.value).endswith(f"unknown destination kind 'brase'; known kinds: {known}")
    assert default_rate(get_destination("webhook")) == 50.0


def test_every_adapter_accepts_an_endpoint_override() -> None:
    for adapter in ADAPTERS.values():
        assert "endpoint" in adapter.settings_model.model_fields


def test_parse_retry_after() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("-5") == 0.0


def test_default_classify() -> None:
    assert classify_by_status(Response(502), items_of([{}, {}, {}])) == [Outcome.retry(None, "502")] * 3


def test_throttle_delay_reads_the_vendors_headers() -> None:
    from traitsync.destinations.http import Response, throttle_delay

    assert throttle_delay(Response(429, {"retry-after": "7"})) == 7.0
    assert throttle_delay(Response(429, {"x-ratelimit-retry-after": "3"})) == 3.0  # Braze
    assert throttle_delay(Response(429, {"x-ratelimit-reset": "1000000100"}), now=1000000000.0) == 100.0  # epoch
    assert throttle_delay(Response(429, {"x-ratelimit-reset": "12"})) == 12.0
    assert throttle_delay(Response(429)) is None
