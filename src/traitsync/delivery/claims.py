"""Which open outbox rows a claim takes, and how they are grouped into exchanges.

**Runs, not heads.** A profile often has several messages waiting at once (an event moves five
traits and an audience): taking only each profile's oldest message meant one claim round, and
one round trip to the vendor, per message of the burst. Where the adapter keeps a batch's order
for one person (``Destination.batch_repeats_profiles``: the webhook), a claim instead takes a
profile's *run*: its consecutive due messages, oldest first, all in ONE group. Other adapters
still get one message per profile per claim. A group is one exchange, whose
requests go out one after another in row order, so a profile's messages still reach the vendor
in order (``Executor`` stops sending a profile's later messages once an earlier one is not
delivered). Two groups of one claim never share a profile, which is what lets groups run
concurrently without an Exited overtaking its Entered.

**A prefix scan instead of a correlated subquery.** Rows come in ``id`` order from the partial
index over unfinished rows, with only the columns needed to decide. Since every earlier
unfinished row of a profile has a smaller ``id``, it was seen before that profile's later rows:
a profile is *blocked* at its first row that is not due (in flight, or waiting for a retry), and
none of its later rows are taken. This replaced a ``NOT EXISTS`` per candidate row, which grew
with the length of the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Most messages of one profile in a group when each message is its own request (batch size 1):
#: a long run would otherwise keep one profile's requests on one thread for seconds.
MAX_RUN = 20


@dataclass(frozen=True)
class OpenRow:
    """What a claim needs to know about an unfinished row (no bodies): is it claimable now."""

    id: int
    order_key: str
    due: bool


class ClaimPlan:
    """Groups built row by row from a prefix of the queue (``add`` in ``id`` order)."""

    def __init__(self, groups: int, batch_size: int, *, repeats: bool = True) -> None:
        self.max_groups = max(1, groups)
        #: Whether one exchange may carry several rows of a profile (``Destination.batch_repeats_profiles``);
        #: if not, a profile's next row waits for the next claim, as each adapter builds its requests
        #: from whatever rows it is handed.
        self.repeats = repeats
        #: Rows per group: the vendor batch size, or a run of one profile when each row is a request.
        self.per_group = batch_size if batch_size > 1 else (MAX_RUN if repeats else 1)
        self.one_key_per_group = batch_size <= 1
        self.groups: list[list[OpenRow]] = []
        self._group_of: dict[str, int] = {}
        self._blocked: set[str] = set()

    @property
    def full(self) -> bool:
        """No new profile can be placed (every group slot is used and the last one is full)."""
        if len(self.groups) < self.max_groups:
            return False
        return self.one_key_per_group or len(self.groups[-1]) >= self.per_group

    def add(self, row: OpenRow) -> None:
        key = row.order_key
        if key in self._blocked:
            return
        if not row.due:
            self._blocked.add(key)
            return
        index = self._group_of.get(key)
        if index is None:
            index = self._place()
            if index is None:
                self._blocked.add(key)  # no room: the whole profile waits for the next claim
                return
            self._group_of[key] = index
        elif not self.repeats:
            self._blocked.add(key)  # one message of this profile per batch request
            return
        group = self.groups[index]
        if len(group) >= self.per_group:
            self._blocked.add(key)  # the rest of the run waits, so it cannot overtake this group
            return
        group.append(row)

    def _place(self) -> int | None:
        if not self.one_key_per_group and self.groups and len(self.groups[-1]) < self.per_group:
            return len(self.groups) - 1
        if len(self.groups) >= self.max_groups:
            return None
        self.groups.append([])
        return len(self.groups) - 1

    def ids(self) -> list[int]:
        return [row.id for group in self.groups for row in group]


def plan_claim(rows: Iterable[OpenRow], groups: int, batch_size: int, *, repeats: bool = True
               ) -> list[list[OpenRow]]:
    """The groups a claim takes from ``rows`` (unfinished rows of one destination, in ``id`` order)."""
    plan = ClaimPlan(groups, batch_size, repeats=repeats)
    for row in rows:
        plan.add(row)
        if plan.full:
            break
    return plan.groups
