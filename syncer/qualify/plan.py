"""The compiled model: what the core runs, built once per Model.

`compile_plan` turns validated rules into matchers (regexes compiled, text lower-cased,
rules indexed by activity type, decay turned into one function of age, the matrix into a
set of cells), so that qualifying a profile does no parsing and little allocation.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass

from syncer.domain.types import ActivityType, Stage
from syncer.qualify.matchers import (
    DAY,
    WHERE_MEMO_SIZE,
    WINDOW_ORIGIN,
    ActivityMatcher,
    AggregateMatcher,
    Decay,
    DisqualifyMatcher,
    FitHit,
    FitMatcher,
    FitTest,
    InactivityMatcher,
    RecycleMatcher,
    Route,
    RouteMatcher,
    WhereIndex,
    where_holds,
)
from syncer.qualify.schema import Engagement, EngagementRule, FitRule
from syncer.qualify.sections import ModelSections
from syncer.qualify.value_tests import (
    PersonTest,
    Valued,
    bins_scorer,
    person_test,
    valued_rule,
    where_tests,
)

__all__ = [  # the matchers are re-exported: scoring and the tests import them from here
    "DAY", "WHERE_MEMO_SIZE", "WINDOW_ORIGIN", "ActivityMatcher", "AggregateMatcher",
    "DisqualifyMatcher", "EngagementParts", "FitHit", "FitMatcher", "FitTest",
    "InactivityMatcher", "Plan", "RecycleMatcher", "Route", "RouteMatcher", "ScorePlan",
    "WhereIndex", "compile_plan", "fit_matcher", "where_holds",
]


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
    #: its person rules in engagement, and its aggregates
    engagement_fields: tuple[FitMatcher, ...] = ()
    aggregates: tuple[AggregateMatcher, ...] = ()


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
    #: person rules in the primary engagement (CRM-computed counts), and its aggregates
    engagement_fields: tuple[FitMatcher, ...] = ()
    aggregates: tuple[AggregateMatcher, ...] = ()


@dataclass(frozen=True, slots=True)
class EngagementParts:
    """One engagement section compiled: per-activity matchers, inactivity rules, person
    rules and aggregates."""

    matchers: tuple[ActivityMatcher, ...]
    inactivity: tuple[InactivityMatcher, ...]
    fields: tuple[FitMatcher, ...]
    aggregates: tuple[AggregateMatcher, ...]


def compile_plan(model: ModelSections) -> Plan:
    """Compile a validated model; called once when the Model is built.

    Per-activity matchers are numbered first (the primary's, then each named score's),
    aggregates after all of them, so that one scan fills one `found` map for every rule
    and each score's per-activity matchers stay one contiguous range."""
    fit = tuple(fit_matcher(r) for r in model.fit.rules)
    sections = [model.engagement, *(e for _, _, e in model.score_sections if e is not None)]
    numbering = _Numbering(sum(_activity_rules(e) for e in sections))
    primary = _engagement(model.engagement, numbering)
    engagement, inactivity = primary.matchers, primary.inactivity
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
        person_test(r) if r.field is not None else None, r.activity, where_tests(r.where))
        for r in life.disqualify)
    fit_fields = tuple(dict.fromkeys(r.field for r in model.fit.rules))
    disqualify_fields = tuple(dict.fromkeys(d.field for d in disqualify if d.field))
    tracks_engagement = bool(inactivity or recycle)
    named = _named(model, numbering, tracks_engagement)
    named_fields = tuple(r.field for _, f, _ in model.score_sections if f for r in f.rules)
    engagement_fields = tuple(m.field for m in (
        *primary.fields, *(f for score in named for f in score.engagement_fields)))
    routed: dict[ActivityType, tuple[Routed, ...]] = dict(by_activity)
    for score in named:
        for matcher in score.engagement or ():
            routed[matcher.activity] = (*routed.get(matcher.activity, ()), matcher)
    for aggregate in (*primary.aggregates, *(a for n in named for a in n.aggregates)):
        for kind in aggregate.activities:
            routed[kind] = (*routed.get(kind, ()), aggregate)
    lookbacks = [e.lookback_days for _, _, e in model.score_sections if e is not None]
    windows = [r.within_days for e in sections for r in e.rules if r.within_days is not None]
    return Plan(
        fit_fields=fit_fields, fit=fit,
        person_fields=tuple(dict.fromkeys((*fit_fields, *disqualify_fields, *named_fields,
                                           *engagement_fields))),
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
        scan_lookback_seconds=max([model.engagement.lookback_days, *lookbacks, *windows]) * DAY,
        hysteresis=q.hysteresis,
        thresholds=tuple((name, position, low, f"{low:g}") for position, (name, low) in
                         enumerate((("score", q.mql_score), ("fit", q.min_fit),
                                    ("engagement", q.min_engagement))) if low is not None),
        engagement_fields=primary.fields, aggregates=primary.aggregates)


class _Numbering:
    """Hands out matcher indices: per-activity matchers from 0, aggregates from the
    number of per-activity matchers of all scores on."""

    def __init__(self, activity_rules: int) -> None:
        self.next_activity = 0
        self.next_aggregate = activity_rules

    def activity(self) -> int:
        self.next_activity += 1
        return self.next_activity - 1

    def aggregate(self) -> int:
        self.next_aggregate += 1
        return self.next_aggregate - 1


def _activity_rules(engagement: Engagement) -> int:
    return sum(1 for r in engagement.rules if r.kind() == "activity")


def _named(model: ModelSections, numbering: _Numbering, tracks_engagement: bool
           ) -> tuple[ScorePlan, ...]:
    """Compile the named scores; their matchers are numbered after the primary's and each
    other's."""
    plans: list[ScorePlan] = []
    primary_engaged = model.engagement.engaged()
    for named, fit, engagement in model.score_sections:
        parts: EngagementParts | None = None
        engaged = primary_engaged
        if engagement is not None:
            parts = _engagement(engagement, numbering)
            engaged = engagement.engaged()
        plans.append(ScorePlan(
            name=named.name,
            fit=None if fit is None else tuple(fit_matcher(r) for r in fit.rules),
            grades=tuple((b.grade, b.min) for b in (fit or model.fit).grades),
            engagement=parts.matchers if parts else None,
            inactivity=parts.inactivity if parts else (), engaged=engaged,
            shares_last_engaged=tracks_engagement and engaged == primary_engaged,
            engagement_fields=parts.fields if parts else (),
            aggregates=parts.aggregates if parts else ()))
    return tuple(plans)


#: Fields whose values are nearly unique per person: remembering them would not help.
UNMEMOIZED_FIELDS = frozenset({"email", "first_name", "last_name"})


def fit_matcher(rule: FitRule | EngagementRule, section: str = "fit") -> FitMatcher:
    """A fit rule, or a person rule of an engagement section (`section` "engagement")."""
    assert rule.field is not None
    memo: dict[object | None, FitHit | None] | None = (
        None if rule.field in UNMEMOIZED_FIELDS else {})
    if rule.valued_kind() != "condition":
        return FitMatcher(f"{section}.{rule.id}", rule.field, 0.0, None,
                          lambda _v: None, memo, valued_rule(rule))
    group = rule.group if isinstance(rule, FitRule) else None
    return FitMatcher(f"{section}.{rule.id}", rule.field, float(rule.points or 0.0), group,
                      person_test(rule), memo)


#: What the scan routes an activity to: a per-activity matcher or an aggregate.
Routed = ActivityMatcher | AggregateMatcher


def _routes(by_activity: Mapping[ActivityType, tuple[Routed, ...]], model: ModelSections,
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


def _engagement(engagement: Engagement, numbering: _Numbering) -> EngagementParts:
    decay, decay_horizon = _decay(engagement)
    lookback = engagement.lookback_days * DAY
    matchers: list[ActivityMatcher] = []
    inactivity: list[InactivityMatcher] = []
    fields: list[FitMatcher] = []
    aggregates: list[AggregateMatcher] = []
    for r in engagement.rules:
        kind = r.kind()
        if kind == "field":
            fields.append(fit_matcher(r, "engagement"))
            continue
        if kind == "aggregate":
            aggregates.append(_aggregate(r, numbering.aggregate(), lookback))
            continue
        points = float(r.points or 0.0)
        if r.activity is None or isinstance(r.activity, tuple):
            assert r.inactive_days is not None
            inactivity.append(InactivityMatcher(f"engagement.{r.id}", r.inactive_days * DAY,
                                                f"{r.inactive_days:g}", points))
            continue
        decays = points > 0 and decay is not None
        cap = r.max_points_per
        steps = engagement.decay_steps if decays else None
        matchers.append(ActivityMatcher(
            rule_id=f"engagement.{r.id}", index=numbering.activity(),
            activity=r.activity,
            activity_text=r.activity.value, points=points,
            points_text=f"{points:g}", decay=decay if decays else None,
            horizon=decay_horizon if decays else lookback, where=where_tests(r.where),
            max_count=r.max_count, max_points=r.max_points,
            window=cap.days * DAY if cap else None, window_points=cap.points if cap else None,
            window_text=f"at most {cap.points:g} per {cap.days:g} days" if cap else "",
            decayed={s.factor: f", {points:g} decayed x{s.factor:.2f}" for s in steps or ()}))
    return EngagementParts(tuple(matchers), tuple(inactivity), tuple(fields),
                           tuple(aggregates))


def _aggregate(rule: EngagementRule, index: int, lookback: float) -> AggregateMatcher:
    """Compile a `measure` rule: the window (default: the lookback) and its scorer."""
    days = rule.within_days
    missing = rule.missing if not isinstance(rule.missing, bool) else None
    if rule.bins is not None:
        valued = bins_scorer([(b.below, b.points) for b in rule.bins], missing)
    else:
        valued = _threshold(person_test(rule), float(rule.points or 0.0), missing)
    kinds = rule.activity_types()
    names = "/".join(k.value for k in kinds)
    what = {"count": f"{names} count", "sum": f"{names} {rule.attribute} total",
            "max": f"{names} {rule.attribute} max",
            "days_since_last": f"days since last {names}"}[rule.measure or "count"]
    window = f" in {days:g} days" if days is not None else ""
    measure = rule.measure or "count"
    return AggregateMatcher(f"engagement.{rule.id}", index, kinds,
                            days * DAY if days is not None else lookback,
                            where_tests(rule.where), measure, rule.attribute,
                            valued, what + window,
                            valued(0 if measure in ("count", "sum") else None))


def _threshold(test: PersonTest, points: float, missing: float | None) -> Valued:
    """min/max + points for an aggregate, with `missing` points for no value."""
    absent = float(missing or 0.0)

    def threshold(v: object) -> tuple[float, str] | None:
        if v is None:
            return (absent, "none") if absent else None
        how = test(v)
        return None if how is None or not points else (points, how)
    return threshold
