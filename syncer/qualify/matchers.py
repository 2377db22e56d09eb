"""The compiled matchers the core's hot loop runs: one per fit, engagement, inactivity,
recycle and disqualify rule, the `where` index that answers attribute tests per value,
and the shapes the scan routes activities by. plan.py builds them from a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from syncer.domain.types import ActivityType, LedgerEntry, Reason, Stage
from syncer.qualify.value_tests import PersonTest, Valued, WhereTests

DAY = 86_400.0
#: Window caps count in fixed windows from this instant: Monday 1970-01-05 00:00 UTC, so
#: 7-day windows are Monday-to-Sunday UTC weeks. Fixed windows (rather than "the last N
#: days" from now) are what keep "time passing never raises a score" true.
WINDOW_ORIGIN = 4 * DAY

FitTest = PersonTest  # v1 name
#: What a fit rule gave for a value: its Reason and its ledger line.
FitHit = tuple[Reason, LedgerEntry]
#: Age in seconds -> the share of its points an activity keeps (0 = not counted).
Decay = Callable[[float], float]
#: (matcher index, horizon in seconds) of one engagement rule.
RouteMatcher = tuple[int, float]
#: Everything the scan needs to know about one activity type, in one lookup:
#: (engagement rules counting it without a `where`, those with one (None: none), is
#: engagement, is a hand-raise, named by a disqualify rule, is a subscriber activity).
Route = tuple[tuple[RouteMatcher, ...], "WhereIndex | None", bool, bool, bool, bool]
#: Attribute values remembered per WhereIndex before its memo starts over.
WHERE_MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class FitMatcher:
    """A compiled fit rule. `memo` (None for fields that differ for nearly everyone, such
    as email) remembers what the rule gave for a value: titles, industries, countries and
    sizes recur across thousands of people, and the answer is a pure function of the value
    (the core's output does not depend on what the memo holds; see scoring.fit_by)."""

    rule_id: str
    field: str
    points: float
    group: str | None
    test: PersonTest
    memo: dict[object | None, FitHit | None] | None = dataclasses.field(
        default=None, compare=False, hash=False)
    #: a table or bins rule: the points and how, per value (`points`/`test` unused)
    valued: Valued | None = None


@dataclass(frozen=True, slots=True)
class ActivityMatcher:
    """A compiled engagement rule; `where` holds (attribute, lower-cased text) pairs.

    `decay` is None for rules that do not fade (negative points, or no decay configured);
    `horizon` is the age (seconds) beyond which the rule does not count an activity.
    """

    rule_id: str
    index: int
    activity: ActivityType
    activity_text: str
    points: float
    points_text: str
    decay: Decay | None
    horizon: float
    where: WhereTests
    max_count: int | None
    max_points: float | None
    window: float | None
    window_points: float | None
    window_text: str
    #: ", 12 decayed x0.70" (as a Reason shows a decayed activity) for each factor of
    #: decay steps, made once rather than per Reason; empty for other decay
    decayed: Mapping[float, str] = dataclasses.field(default_factory=dict, compare=False,
                                                     hash=False)


class WhereIndex:
    """The engagement rules of one activity type that have a `where`: which of them an
    activity's attributes pass.

    A page view is tested against every `where` of every page-view rule (five in the
    shipped model, named scores included), each lower-casing the URL again; yet the same
    few URLs, forms and campaigns recur across thousands of people. When every rule here
    tests the same one attribute (the usual case), the answer is a pure function of that
    attribute's value and is remembered per value (up to WHERE_MEMO_SIZE values, then the
    memo starts over), so the scan does one lookup per activity. Otherwise each rule's
    `where` is evaluated, as `where_holds` does. Either way the result is the same.
    """

    __slots__ = ("key", "matchers", "memo")

    def __init__(self, matchers: tuple[tuple[int, float, WhereTests], ...]) -> None:
        self.matchers = matchers
        keys = {where[0][0] if len(where) == 1 else None for _, _, where in matchers}
        #: the one attribute every rule here tests, or None (several, or several each)
        self.key: str | None = keys.pop() if len(keys) == 1 else None
        self.memo: dict[str | None, tuple[RouteMatcher, ...]] = {}

    def passing(self, attributes: Mapping[str, str]) -> tuple[RouteMatcher, ...]:
        """The (index, horizon) of each rule whose `where` these attributes satisfy."""
        key = self.key
        if key is None:
            return tuple((index, horizon) for index, horizon, where in self.matchers
                         if where_holds(where, attributes))
        value = attributes.get(key)
        found = self.memo.get(value)
        if found is None:
            found = tuple((index, horizon) for index, horizon, ((_, test),) in self.matchers
                          if test(value))
            if len(self.memo) >= WHERE_MEMO_SIZE:
                self.memo.clear()
            self.memo[value] = found
        return found


def where_holds(where: WhereTests, attributes: Mapping[str, str]) -> bool:
    """Every (attribute, test) pair passes: a text `where` entry must be contained in the
    attribute (ignoring case), a condition must hold (where_tests)."""
    return all(test(attributes.get(key)) for key, test in where)


@dataclass(frozen=True, slots=True)
class AggregateMatcher:
    """A compiled `measure` rule: one number from the activities of `activities` in the
    last `horizon` seconds that pass `where`, scored by `valued` (bins, or a min/max
    threshold with points; `missing` folded in). Numbered after every per-activity
    matcher, so the scan collects its activities in the same `found` map."""

    rule_id: str
    index: int
    activities: tuple[ActivityType, ...]
    horizon: float
    where: WhereTests
    measure: str
    attribute: str | None
    valued: Valued
    #: "page_view count in 30 days", as the Reason starts
    label: str
    #: what `valued` gives when nothing is in the window (count and sum 0, else no value)
    empty: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class InactivityMatcher:
    rule_id: str
    seconds: float
    days_text: str
    points: float


@dataclass(frozen=True, slots=True)
class RecycleMatcher:
    rule_id: str
    sources: frozenset[Stage]
    seconds: float
    days_text: str
    target: Stage


@dataclass(frozen=True, slots=True)
class DisqualifyMatcher:
    """Either `field` + `test` (a person condition) or `activity` (+ `where`)."""

    rule_id: str
    field: str | None
    test: PersonTest | None
    activity: ActivityType | None
    where: WhereTests
