"""The status table (STYLE rule 4), row by row."""

from __future__ import annotations

import pytest

from traitsync.destinations.status import AUTH, DROP, OK, RETRY, Status, classify_status

TABLE: list[tuple[int, Status]] = [
    (200, OK), (201, OK), (202, OK), (204, OK), (299, OK),
    (408, RETRY), (423, RETRY), (429, RETRY),
    (500, RETRY), (502, RETRY), (503, RETRY), (504, RETRY), (505, RETRY), (511, RETRY), (598, RETRY), (599, RETRY),
    (501, DROP),
    (401, AUTH), (403, AUTH),
    (400, DROP), (404, DROP), (405, DROP), (409, DROP), (410, DROP), (413, DROP), (422, DROP), (499, DROP),
    (301, RETRY), (307, RETRY),
]


@pytest.mark.parametrize(("code", "expected"), TABLE)
def test_classify_status(code: int, expected: Status) -> None:
    assert classify_status(code) is expected


def test_every_code_has_one_answer() -> None:
    counts = {s: 0 for s in Status}
    for code in range(100, 600):
        counts[classify_status(code)] += 1
    # 4xx: 100 - 2 auth - 3 transient + 501; retry: 3 + 99 5xx + 1xx and 3xx
    assert counts == {OK: 100, AUTH: 2, DROP: 96, RETRY: 302}
