"""The fast ``normalise`` gives exactly the reference's answers, and timestamps keep their milliseconds."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traitsync.spec import validate, validate_reference
from traitsync.spec.timestamps import canonical_iso_ms, format_iso_ms, parse_iso_ms

RECEIVED = 1_764_000_000_000

scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
times = st.sampled_from(["2026-11-20T10:05:05.123Z", "2026-11-20T10:05:05Z", "2026-11-20T12:05:05+02:00",
                         "2026-11-20 10:05:05.123456", "2026-W47-5T10:05:05.000Z", "1969-12-31T23:59:59.000Z",
                         "2026-02-30T10:05:05.000Z", "not a time", ""]) | st.integers(0, 10) | st.none()
contexts = st.fixed_dictionaries({}, optional={
    "traits": values, "device": st.fixed_dictionaries({}, optional={"advertisingId": values}),
    "consent": st.fixed_dictionaries({}, optional={"categoryPreferences": values,
                                                    "version": values}),
    "externalIds": st.lists(st.fixed_dictionaries({}, optional={k: st.sampled_from(["x", "", 1]) for k in
                                                                ("id", "type", "collection", "encoding")}),
                            max_size=2) | values,
}) | values
messages = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "other", ""]) | values,
    "userId": st.sampled_from(["u1", ""]) | values, "anonymousId": st.sampled_from(["a1", ""]) | values,
    "previousId": st.sampled_from(["p1", ""]) | values, "groupId": st.sampled_from(["g1", ""]) | values,
    "event": st.sampled_from(["Order Completed", ""]) | values, "name": values, "category": values,
    "properties": values, "traits": values, "context": contexts, "integrations": values,
    "messageId": st.sampled_from(["m-1", "", "x" * 101]) | values,
    "timestamp": times, "originalTimestamp": times, "sentAt": times, "receivedAt": times, "writeKey": values,
})


def _answer(result: Any) -> Any:
    if isinstance(result, validate.Rejection):
        return ("rejected", result.code, result.message, result.index, result.message_id)
    generated = result.message_id.startswith("ts-")
    body = dict(result.body)
    if generated:
        body.pop("messageId")
    return ("accepted", None if generated else result.message_id, result.type, result.event, result.user_id,
            result.anonymous_id, result.timestamp_ms, result.received_at_ms, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(message=messages | values, default_type=st.sampled_from([None, "track", "identify", "alias"]),
       batch_sent_at=times, keep=st.booleans())
def test_fast_normalise_answers_as_the_reference(message: Any, default_type: str | None, batch_sent_at: Any,
                                                 keep: bool) -> None:
    mine, theirs = copy.deepcopy(message), copy.deepcopy(message)
    kwargs: dict[str, Any] = {"received_at_ms": RECEIVED, "default_type": default_type,
                              "batch_sent_at": batch_sent_at, "keep_received_at": keep}
    fast = validate.normalise(mine, **kwargs)
    reference = validate_reference.normalise(theirs, **kwargs)
    assert _answer(fast) == _answer(reference)
    if isinstance(fast, validate.Rejection):  # the refused body recorded for the debugger is the same too
        assert mine == theirs


def test_a_list_as_type_is_refused_not_a_crash() -> None:
    result = validate.normalise({"type": [], "userId": "u"}, received_at_ms=RECEIVED)
    assert isinstance(result, validate.Rejection)
    assert (result.code, result.message) == ("bad_request", "type must be one of alias, group, identify, page, "
                                                            "screen, track")


@given(st.integers(0, 4_102_444_800_000))
def test_timestamps_keep_their_milliseconds(ms: int) -> None:
    text = format_iso_ms(ms)
    assert parse_iso_ms(text) == ms
    assert canonical_iso_ms(text) == ms


def test_a_float_rounding_case_that_used_to_lose_a_millisecond() -> None:
    assert parse_iso_ms("2039-02-22T20:18:26.160Z") == 2_182_018_706_160


def test_canonical_form_only() -> None:
    assert canonical_iso_ms("2026-W47-5T10:05:05.000Z") is None  # an ISO week date, not the 47th month
    assert canonical_iso_ms("2026-11-20T10:05:05Z") is None
    assert canonical_iso_ms("2026-02-30T10:05:05.000Z") is None
    assert parse_iso_ms("2026-W47-5T10:05:05.000Z") == parse_iso_ms("2026-11-20T10:05:05.000Z")
