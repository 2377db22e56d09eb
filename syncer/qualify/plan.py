"""The compiled model: what the core runs, built once per Model.

`compile_plan` turns validated rules into matchers (regexes compiled, text lower-cased,
rules indexed by activity type, decay turned into one function of age, the matrix into a
set of cells), so that qualifying a profile does no parsing and little allocation.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from syncer.domain import ActivityType, LedgerEntry, Reason, Stage
from syncer.qualify.schema import Engagement, FitRule, PersonCondition

if TYPE_CHECKING:
    from syncer.qualify.model import Model

DAY = 86_400.0
#: Window caps count in fixed windows from this instant: Monday 1970-01-05 00:00 UTC, so
#: 7-day windows are Monday-to-Sunday UTC weeks. Fixed windows (rather than "the last N
#: days" from now) are what keep "time passing never raises a score" true.
WINDOW_ORIGIN = 4 * DAY

#: A compiled person condition: how the value matched (for the Reason), or None.
PersonTest = Callable[[object], str | None]
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
    where: tuple[tuple[str, str], ...]
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

    def __init__(self, matchers: tuple[tuple[int, float, tuple[tuple[str, str], ...]], ...]
                 ) -> None:
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
            text = value.lower() if value is not None else None
            found = tuple((index, horizon) for index, horizon, ((_, needle),) in self.matchers
                          if text is not None and needle in text)
            if len(self.memo) >= WHERE_MEMO_SIZE:
                self.memo.clear()
            self.memo[value] = found
        return found


def where_holds(where: tuple[tuple[str, str], ...], attributes: Mapping[str, str]) -> bool:
    """Every (attribute, lower-cased text) pair: the attribute contains the text, ignoring
    case."""
    for key, text in where:
        value = attributes.get(key)
        if value is None or text not in value.lower():
            return False
    return True


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
    where: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """A named score, compiled. `fit` / `engagement` None: the primary's, whose result is
    reused rather than computed twice. Engagement matchers are numbered after the
    primary's, so one scan of the activities serves every score."""

    name: str
    fit: tuple[FitMatcher, ...] | None
    grades: tuple[tuple[str, float], ...]
    engagement: tuple[ActivityMatcher, ...] | None
    inactivity: tuple[InactivityMatcher, ...]
    #: what counts as engagement for its inactivity rules
    engaged: frozenset[ActivityType]
    #: the scan's latest engagement is this score's too (same engaged activities)
    shares_last_engaged: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the core needs from a model, precomputed once per model."""

    fit_fields: tuple[str, ...]
    fit: tuple[FitMatcher, ...]
    #: person fields that fit or disqualify rules read
    person_fields: tuple[str, ...]
    engagement: tuple[ActivityMatcher, ...]
    #: a plain dict (read-only by convention): a mappingproxy costs a lookup per activity
    by_activity: Mapping[ActivityType, tuple[ActivityMatcher, ...]]
    inactivity: tuple[InactivityMatcher, ...]
    lookback_seconds: float
    #: activity types that count as engagement for inactivity and recycle rules
    engaged: frozenset[ActivityType]
    hand_raise: frozenset[ActivityType]
    hand_raise_seconds: float
    mode: str
    mql_score: float | None
    min_fit: float | None
    min_engagement: float | None
    grades: tuple[tuple[str, float], ...]
    bands: tuple[tuple[str, float], ...]
    matrix: frozenset[tuple[str, str]]
    matrix_text: str
    subscriber: frozenset[ActivityType]
    recycle: tuple[RecycleMatcher, ...]
    disqualify: tuple[DisqualifyMatcher, ...]
    disqualify_fields: tuple[str, ...]
    disqualify_activities: frozenset[ActivityType]
    keep_disqualified: bool
    assign_at: Stage
    #: whether the scan must find the latest engagement (inactivity or recycle rules)
    tracks_engagement: bool
    #: activity type -> Route, for every type (the named scores' matchers included)
    routes: Mapping[ActivityType, Route]
    #: the primary score's name, and the named scores
    score_name: str
    named: tuple[ScorePlan, ...]
    #: the longest lookback of any score: older activities concern no rule
    scan_lookback_seconds: float
    #: qualification.hysteresis (0: off)
    hysteresis: float
    #: mode total: the MQL checks as (name, position in (score, fit, engagement), minimum,
    #: the minimum as shown in Reasons), the thresholds left out (None) omitted
    thresholds: tuple[tuple[str, int, float, str], ...]


def compile_plan(model: Model) -> Plan:
    """Compile a validated model; called once when the Model is built."""
    fit = tuple(fit_matcher(r) for r in model.fit.rules)
    engagement, inactivity = _engagement(model.engagement)
    by_activity: dict[ActivityType, tuple[ActivityMatcher, ...]] = {}
    for matcher in engagement:
        by_activity[matcher.activity] = (*by_activity.get(matcher.activity, ()), matcher)
    q, life = model.qualification, model.lifecycle
    recycle = tuple(RecycleMatcher(f"lifecycle.recycle.{r.id}",
                                   frozenset(Stage(s) for s in r.from_), r.inactive_days * DAY,
                                   f"{r.inactive_days:g}", Stage(r.to))
                    for r in life.recycle)
    disqualify = tuple(DisqualifyMatcher(
        f"lifecycle.disqualify.{r.id}", r.field,
        person_test(r) if r.field is not None else None, r.activity, _where(r.where))
        for r in life.disqualify)
    fit_fields = tuple(dict.fromkeys(r.field for r in model.fit.rules))
    disqualify_fields = tuple(dict.fromkeys(d.field for d in disqualify if d.field))
    tracks_engagement = bool(inactivity or recycle)
    named = _named(model, len(engagement), tracks_engagement)
    named_fields = tuple(r.field for _, f, _ in model.score_sections if f for r in f.rules)
    routed = dict(by_activity)
    for score in named:
        for matcher in score.engagement or ():
            routed[matcher.activity] = (*routed.get(matcher.activity, ()), matcher)
    lookbacks = [e.lookback_days for _, _, e in model.score_sections if e is not None]
    return Plan(
        fit_fields=fit_fields, fit=fit,
        person_fields=tuple(dict.fromkeys((*fit_fields, *disqualify_fields, *named_fields))),
        engagement=engagement, by_activity=by_activity,
        inactivity=inactivity,
        lookback_seconds=model.engagement.lookback_days * DAY,
        engaged=model.engagement.engaged(),
        hand_raise=frozenset(q.hand_raise),
        hand_raise_seconds=(q.hand_raise_days or model.engagement.lookback_days) * DAY,
        mode=q.mode, mql_score=q.mql_score, min_fit=q.min_fit,
        min_engagement=q.min_engagement,
        grades=tuple((b.grade, b.min) for b in model.fit.grades),
        bands=tuple((b.band, b.min) for b in model.engagement.bands or ()),
        matrix=frozenset(model.matrix_cells), matrix_text=", ".join(q.matrix or ()),
        subscriber=frozenset(life.subscriber_activities), recycle=recycle,
        disqualify=disqualify,
        disqualify_fields=disqualify_fields,
        disqualify_activities=frozenset(d.activity for d in disqualify if d.activity),
        keep_disqualified=life.keep_disqualified,
        assign_at=Stage(model.routing.assign_at),
        tracks_engagement=tracks_engagement,
        routes=_routes(routed, model, tracks_engagement),
        score_name=model.primary_score, named=named,
        scan_lookback_seconds=max([model.engagement.lookback_days, *lookbacks]) * DAY,
        hysteresis=q.hysteresis,
        thresholds=tuple((name, position, low, f"{low:g}") for position, (name, low) in
                         enumerate((("score", q.mql_score), ("fit", q.min_fit),
                                    ("engagement", q.min_engagement))) if low is not None))


def _named(model: Model, first_index: int, tracks_engagement: bool
           ) -> tuple[ScorePlan, ...]:
    """Compile the named scores; their engagement matchers are numbered from
    `first_index` on, after the primary's and each other's."""
    plans: list[ScorePlan] = []
    primary_engaged = model.engagement.engaged()
    index = first_index
    for named, fit, engagement in model.score_sections:
        matchers: tuple[ActivityMatcher, ...] | None = None
        inactivity: tuple[InactivityMatcher, ...] = ()
        engaged = primary_engaged
        if engagement is not None:
            matchers, inactivity = _engagement(engagement, index)
            index += len(matchers)
            engaged = engagement.engaged()
        plans.append(ScorePlan(
            name=named.name,
            fit=None if fit is None else tuple(fit_matcher(r) for r in fit.rules),
            grades=tuple((b.grade, b.min) for b in (fit or model.fit).grades),
            engagement=matchers, inactivity=inactivity, engaged=engaged,
            shares_last_engaged=tracks_engagement and engaged == primary_engaged))
    return tuple(plans)


#: Fields whose values are nearly unique per person: remembering them would not help.
UNMEMOIZED_FIELDS = frozenset({"email", "first_name", "last_name"})


def fit_matcher(rule: FitRule) -> FitMatcher:
    return FitMatcher(f"fit.{rule.id}", rule.field, rule.points, rule.group,
                      person_test(rule), None if rule.field in UNMEMOIZED_FIELDS else {})


def _routes(by_activity: Mapping[ActivityType, tuple[ActivityMatcher, ...]], model: Model,
            tracks_engagement: bool) -> dict[ActivityType, Route]:
    engaged = model.engagement.engaged() if tracks_engagement else frozenset()
    hand_raise = frozenset(model.qualification.hand_raise)
    disqualify = {r.activity for r in model.lifecycle.disqualify if r.activity is not None}
    subscriber = frozenset(model.lifecycle.subscriber_activities)
    routes: dict[ActivityType, Route] = {}
    for kind in ActivityType:
        matchers = by_activity.get(kind, ())
        filtered = tuple((m.index, m.horizon, m.where) for m in matchers if m.where)
        routes[kind] = (tuple((m.index, m.horizon) for m in matchers if not m.where),
                        WhereIndex(filtered) if filtered else None,
                        kind in engaged, kind in hand_raise, kind in disqualify,
                        kind in subscriber)
    return routes


def _where(where: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple((k, v.strip().lower()) for k, v in sorted((where or {}).items()))


def _decay(engagement: Engagement) -> tuple[Decay | None, float]:
    """The decay function and the age beyond which decaying points are not counted."""
    lookback = engagement.lookback_days * DAY
    if engagement.half_life_days is not None:
        rate = math.log(2) / (engagement.half_life_days * DAY)
        return (lambda age: math.exp(-age * rate)), lookback
    if engagement.decay_steps is not None:
        ages = tuple(s.max_age_days * DAY for s in engagement.decay_steps)
        factors = (*(s.factor for s in engagement.decay_steps), 0.0)

        def stepwise(age: float) -> float:
            return factors[bisect.bisect_left(ages, age)]
        return stepwise, min(lookback, ages[-1])
    return None, lookback


def _engagement(engagement: Engagement, first_index: int = 0
                ) -> tuple[tuple[ActivityMatcher, ...], tuple[InactivityMatcher, ...]]:
    decay, decay_horizon = _decay(engagement)
    lookback = engagement.lookback_days * DAY
    matchers: list[ActivityMatcher] = []
    inactivity: list[InactivityMatcher] = []
    for r in engagement.rules:
        if r.activity is None:
            assert r.inactive_days is not None
            inactivity.append(InactivityMatcher(f"engagement.{r.id}", r.inactive_days * DAY,
                                                f"{r.inactive_days:g}", r.points))
            continue
        decays = r.points > 0 and decay is not None
        cap = r.max_points_per
        steps = engagement.decay_steps if decays else None
        matchers.append(ActivityMatcher(
            rule_id=f"engagement.{r.id}", index=first_index + len(matchers),
            activity=r.activity,
            activity_text=r.activity.value, points=r.points,
            points_text=f"{r.points:g}", decay=decay if decays else None,
            horizon=decay_horizon if decays else lookback, where=_where(r.where),
            max_count=r.max_count, max_points=r.max_points,
            window=cap.days * DAY if cap else None, window_points=cap.points if cap else None,
            window_text=f"at most {cap.points:g} per {cap.days:g} days" if cap else "",
            decayed={s.factor: f", {r.points:g} decayed x{s.factor:.2f}" for s in steps or ()}))
    return tuple(matchers), tuple(inactivity)


def person_test(rule: PersonCondition) -> PersonTest:
    """Build the matcher for one person condition; each closure does one cheap comparison."""
    if rule.missing is not None:
        want_missing = rule.missing
        return lambda v: ("is missing" if v is None else None) if want_missing else (
            None if v is None else "is present")
    if rule.at_least is not None or rule.at_most is not None:
        low = rule.at_least if rule.at_least is not None else -math.inf
        high = rule.at_most if rule.at_most is not None else math.inf
        shown = (f">= {rule.at_least}" if rule.at_most is None
                 else f"<= {rule.at_most}" if rule.at_least is None
                 else f"in {rule.at_least}..{rule.at_most}")
        return lambda v: f"{v} {shown}" if isinstance(v, int) and low <= v <= high else None
    if rule.email_domain_in is not None:
        domains = frozenset(d.strip().lower().lstrip("@") for d in rule.email_domain_in)
        suffixes = tuple("." + d for d in domains)

        def email_domain(v: object) -> str | None:
            if not isinstance(v, str):
                return None
            domain = v.rpartition("@")[2].strip().lower()
            hit = domain in domains or domain.endswith(suffixes)
            return f"domain {domain} is listed" if hit else None
        return email_domain
    if rule.regex is not None:
        pattern, source = re.compile(rule.regex, re.IGNORECASE), rule.regex
        return lambda v: (f"{v!r} matches /{source}/"
                          if isinstance(v, str) and pattern.search(v) else None)
    if rule.contains is not None:
        needles = tuple(n.strip().lower() for n in rule.contains)

        def contains(v: object) -> str | None:
            if isinstance(v, str):
                text = v.lower()
                for needle in needles:
                    if needle in text:
                        return f"{v!r} contains '{needle}'"
            return None
        return contains
    wanted = [rule.equals] if rule.equals is not None else list(rule.in_ or ())
    if rule.field == "employees":
        numbers = frozenset(w for w in wanted if isinstance(w, int))
        return lambda v: f"{v} is listed" if isinstance(v, int) and v in numbers else None
    texts = frozenset(str(w).strip().lower() for w in wanted)
    return lambda v: (f"{v!r} is listed"
                      if isinstance(v, str) and v.strip().lower() in texts else None)
