"""Aggregate rules (`measure`): one number from a person's recent activities, scored.

The scan has already collected, per aggregate, the activities of its types within its
window that pass its `where` (plan.AggregateMatcher). Here the number is computed and
scored: `count` and `sum` of nothing are 0, `max` and `days_since_last` of nothing have no
value (the rule's `missing` points). A non-numeric attribute value is left out of a sum
or a max, as if the activity did not carry it. The Reason cites the latest activity
counted; one ledger line per rule (an aggregate has no per-activity points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from syncer.domain.types import Activity, LedgerEntry, Reason
from syncer.qualify.activity_points import Hit
from syncer.qualify.construct import ledger_line, new_reason
from syncer.qualify.matchers import DAY, AggregateMatcher
from syncer.qualify.value_tests import as_number, plain


def measured(matcher: AggregateMatcher, hits: Sequence[Hit]) -> float | None:
    """The rule's number for these activities (None: no value)."""
    measure = matcher.measure
    if measure == "count":
        return float(len(hits))
    if measure == "days_since_last":
        return float(int(min(age for age, _ in hits) // DAY)) if hits else None
    attribute = matcher.attribute or ""
    numbers = [n for _, a in hits if (n := as_number(a.attributes.get(attribute))) is not None]
    if measure == "sum":
        return math.fsum(numbers)
    return max(numbers) if numbers else None


def _latest(hits: Sequence[Hit]) -> Activity | None:
    latest: Activity | None = None
    for _, activity in hits:
        if latest is None or (activity.occurred_at, activity.source, activity.source_id) > (
                latest.occurred_at, latest.source, latest.source_id):
            latest = activity
    return latest


def aggregate_reasons(matchers: tuple[AggregateMatcher, ...], found: dict[int, list[Hit]],
                      ledger: list[LedgerEntry] | None) -> list[Reason]:
    """One Reason (and ledger line) per aggregate that gives points."""
    reasons: list[Reason] = []
    for matcher in matchers:
        hits = found.get(matcher.index)
        if hits is None:  # nothing in the window: the same answer for everyone
            got = matcher.empty
            hits = []
        else:
            number = measured(matcher, hits)
            got = matcher.valued(None if number is None else plain(number))
        if got is None:
            continue
        points, how = got
        latest = _latest(hits)
        at = latest.occurred_at if latest is not None else None
        detail = f"{matcher.label}: {how}"
        if at is not None:  # the evidence's day, as every dated Reason shows it
            detail += f", latest {at.date().isoformat()}"
        reasons.append(new_reason(matcher.rule_id, points, detail, at))
        if ledger is not None:
            activity_id = f"{latest.source}:{latest.source_id}" if latest else None
            ledger.append(ledger_line(matcher.rule_id, points, detail, activity_id, at, 1.0))
    return reasons
