"""Fit and engagement points: who the person is, and what they did recently.

`scan` reads a profile's activities once and sorts what every rule needs out of them (the
activities each engagement rule counts, the latest engagement, the latest hand-raise,
whether the person only ever subscribed, activities that disqualify), so the rest of the
core never loops over activities again.

Every point is accounted for by a Reason: one per matching fit rule, one per engagement
rule that counted activities (it covers all of them and cites the most recent as evidence,
which keeps reasons few and the core fast), and one per inactivity rule that fired. Totals
use math.fsum (exactly rounded, so independent of order): `sum(reason.points) == fit +
engagement`. Given a `ledger` list, the same functions also append one line per fit rule,
per counted activity (activity_points.py, which evaluates the engagement rules), per cap
and per inactivity rule; cards.py turns those into each score's ScoreCard.

Decay choice: positive engagement fades (half-life or steps: interest fades); negative
engagement (unsubscribe, bounce) does NOT fade: an address that bounced or opted out does
not become a better lead by waiting. Both stop counting once older than the lookback
window, which bounds how far back the model looks at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from syncer.domain.types import Activity, ActivityType, LedgerEntry, Person, Profile, Reason
from syncer.qualify.activity_points import (
    EVIDENCE_ATTRIBUTES,
    Hit,
    activity_evidence,
    rule_points,
    rule_reason,
)
from syncer.qualify.aggregates import aggregate_reasons
from syncer.qualify.conditions import STANDARD_FIELDS
from syncer.qualify.construct import ledger_line, new_reason
from syncer.qualify.plan import (
    DAY,
    ActivityMatcher,
    AggregateMatcher,
    FitHit,
    FitMatcher,
    FitTest,
    InactivityMatcher,
    Plan,
    compile_plan,
    where_holds,
)

__all__ = [
    "EVIDENCE_ATTRIBUTES", "ActivityMatcher", "FitMatcher", "FitTest", "Plan", "Scan",
    "activity_evidence", "compile_plan", "engagement_from", "engagement_points", "fit_from",
    "fit_grade", "fit_points", "person_values", "scan", "where_holds",
]


class Scan:
    """What one pass over a profile's activities found (activities dated after `now` are
    ignored everywhere: clock skew between systems must not count what has not happened).

    `found`: matcher index -> activities it counts; `last_engaged` / `hand_raise`: the
    latest such activity (ties broken by source and id, so evidence is deterministic);
    `only_subscriber`: the person has activities and all are subscriber activities;
    `disqualifying`: activities of a type some disqualify rule names.
    """

    __slots__ = ("disqualifying", "found", "hand_raise", "last_engaged", "last_engaged_ts",
                 "only_subscriber")

    def __init__(self, found: dict[int, list[Hit]], last_engaged: Activity | None,
                 last_engaged_ts: float, hand_raise: Activity | None, only_subscriber: bool,
                 disqualifying: list[Activity]) -> None:
        self.found = found
        self.last_engaged = last_engaged
        self.last_engaged_ts = last_engaged_ts  # -inf when there is none
        self.hand_raise = hand_raise
        self.only_subscriber = only_subscriber
        self.disqualifying = disqualifying


def _tie_later(a: Activity, b: Activity | None) -> bool:
    """Between two activities at the same instant, the one cited is the larger (source, id)."""
    return b is None or (a.source, a.source_id) > (b.source, b.source_id)


def scan(profile: Profile, plan: Plan, now_ts: float) -> Scan:
    """One pass over the activities (see Scan). The hottest loop of the core: one route
    lookup per activity says everything about its type (plan.Route)."""
    routes, lookback = plan.routes, plan.scan_lookback_seconds
    hand_raise_window = plan.hand_raise_seconds
    found: dict[int, list[Hit]] = {}
    last: Activity | None = None
    raised: Activity | None = None
    last_ts = raised_ts = -math.inf
    only_subscriber, seen = bool(plan.subscriber), False
    disqualifying: list[Activity] = []
    for activity in profile.activities:
        ts = activity.occurred_at.timestamp()
        age = now_ts - ts
        if age < 0.0:
            continue
        plain, filtered, engaged, hand_raise, disqualify, subscriber = routes[activity.type]
        seen = True
        if not subscriber:
            only_subscriber = False
        if engaged and (ts > last_ts or (ts == last_ts and _tie_later(activity, last))):
            last, last_ts = activity, ts
        if hand_raise and age <= hand_raise_window and (
                ts > raised_ts or (ts == raised_ts and _tie_later(activity, raised))):
            raised, raised_ts = activity, ts
        if disqualify:
            disqualifying.append(activity)
        if age > lookback or not (plain or filtered):
            continue
        matching = plain
        if filtered is not None:  # rules with a `where`: WhereIndex.passing, its memo inlined
            key = filtered.key
            passing = filtered.memo.get(activity.attributes.get(key)) if key else None
            if passing is None:
                passing = filtered.passing(activity.attributes)
            matching = plain + passing if plain else passing  # the plain rules' hits first
        hit = (age, activity)
        for index, horizon in matching:
            if age <= horizon:
                hits = found.get(index)
                if hits is None:
                    found[index] = [hit]
                else:
                    hits.append(hit)
    return Scan(found, last, last_ts, raised, only_subscriber and seen, disqualifying)


# ---------------------------------------------------------------- fit


def person_values(profile: Profile, fields: tuple[str, ...]) -> dict[str, object | None]:
    """The merged value of each field (first non-empty record wins; "" counts as missing);
    `email` falls back to the profile key, which is the normalized email. A standard
    field is the record's attribute; any other name is one of its mapped `properties`."""
    records = profile.records
    if len(records) == 1:  # the common case, without the loop over records
        record = records[0]
        properties = record.properties
        values = {name: (None if (v := (getattr(record, name) if name in STANDARD_FIELDS
                                        else properties.get(name))) == "" else v)
                  for name in fields}
    else:
        values = {name: _first(records, name) for name in fields}
    if "email" in values and values["email"] is None and "@" in profile.key:
        values["email"] = profile.key
    return values


def _first(records: tuple[Person, ...], name: str) -> object | None:
    """The first non-empty value of a field across records in precedence order."""
    standard = name in STANDARD_FIELDS
    for record in records:
        value = getattr(record, name) if standard else record.properties.get(name)
        if value is not None and value != "":
            return value
    return None


def fit_points(profile: Profile, plan: Plan) -> tuple[float, list[Reason]]:
    """Points for the person's attributes. Within a `group` only the first match counts."""
    return fit_from(person_values(profile, plan.fit_fields), plan)


def fit_from(values: Mapping[str, object | None], plan: Plan,
             ledger: list[LedgerEntry] | None = None) -> tuple[float, list[Reason]]:
    """Fit points and one Reason per matching rule (and, with `ledger`, one entry each)."""
    return fit_by(values, plan.fit, ledger)


def fit_by(values: Mapping[str, object | None], matchers: tuple[FitMatcher, ...],
           ledger: list[LedgerEntry] | None = None) -> tuple[float, list[Reason]]:
    """Fit by these rules: within a `group` only the first match counts."""
    reasons: list[Reason] = []
    taken: set[str] = set()
    for matcher in matchers:
        group = matcher.group
        if group is not None and group in taken:
            continue
        value = values[matcher.field]
        memo = matcher.memo
        if memo is None:
            found = _fit_match(matcher, value)
        else:
            try:
                found = memo[value]
            except KeyError:
                found = _fit_match(matcher, value)
                if len(memo) >= FIT_MEMO_SIZE:
                    memo.clear()
                memo[value] = found
        if found is None:
            continue
        if group is not None:
            taken.add(group)
        reason, entry = found
        reasons.append(reason)
        if ledger is not None:
            ledger.append(entry)
    return math.fsum([r.points for r in reasons]), reasons


#: Values remembered per fit rule (FitMatcher.memo) before the memo starts over.
FIT_MEMO_SIZE = 4096


def _fit_match(matcher: FitMatcher, value: object | None) -> FitHit | None:
    """What one fit rule gives for one value: its Reason and ledger line, or None."""
    if matcher.valued is not None:
        got = matcher.valued(value)
        if got is None:
            return None
        points, how = got
    else:
        found = matcher.test(value)
        if found is None:
            return None
        points, how = matcher.points, found
    detail = f"{matcher.field} {how}"
    return Reason(matcher.rule_id, points, detail), LedgerEntry(matcher.rule_id, points, detail)


def fit_grade(fit: float, plan: Plan) -> str:
    """The first band whose min the fit reaches; below every band, the last (worst) one."""
    return grade_of(fit, plan.grades)


def grade_of(fit: float, grades: tuple[tuple[str, float], ...]) -> str:
    for grade, low in grades:
        if fit >= low:
            return grade
    return grades[-1][0]


def engagement_band(engagement: float, plan: Plan) -> str:
    """Like fit_grade, for the engagement bands of a matrix model ("" when none)."""
    for band, low in plan.bands:
        if engagement >= low:
            return band
    return plan.bands[-1][0] if plan.bands else ""


# ---------------------------------------------------------------- engagement


def engagement_points(profile: Profile, plan: Plan,
                      now_ts: float) -> tuple[float, list[Reason]]:
    """Decayed, capped points for activities in [now - lookback, now], plus inactivity."""
    values = person_values(profile, plan.person_fields)
    return engagement_from(scan(profile, plan, now_ts), plan, now_ts, values=values)


def engagement_from(found: Scan, plan: Plan, now_ts: float,
                    ledger: list[LedgerEntry] | None = None,
                    values: Mapping[str, object | None] | None = None
                    ) -> tuple[float, list[Reason]]:
    """The primary score's engagement points and Reasons (one per rule that counted
    something, then person rules, aggregates and inactivity); with `ledger`, one entry
    per counted activity, cap, person rule, aggregate and inactivity rule, whose points
    add up to the same total. `values`: the person fields (needed by person rules)."""
    return engagement_by(found, plan.engagement, plan.inactivity, found.last_engaged,
                         found.last_engaged_ts, now_ts, ledger, plan.engagement_fields,
                         plan.aggregates, values)


def extra_reasons(fields: tuple[FitMatcher, ...], aggregates: tuple[AggregateMatcher, ...],
                  values: Mapping[str, object | None] | None, found: Scan,
                  ledger: list[LedgerEntry] | None) -> list[Reason]:
    """The Reasons of an engagement section's person rules (on the person's `values`)
    and aggregates; kept apart so that the common model (activity rules and inactivity
    only) pays one truth test for them."""
    reasons: list[Reason] = []
    if fields:
        if values is None:
            raise ValueError("person rules in engagement need the person's values")
        reasons += fit_by(values, fields, ledger)[1]
    if aggregates:
        reasons += aggregate_reasons(aggregates, found.found, ledger)
    return reasons


def _own_hits(found: Scan, matchers: tuple[ActivityMatcher, ...]
              ) -> list[tuple[ActivityMatcher, list[Hit]]]:
    """Each of one score's matchers that the scan found activities for, with them, in
    matcher order: the scan numbers the matchers of every score in one sequence, and
    `matchers` is this score's run of it."""
    hits = found.found
    first = matchers[0].index if matchers else 0
    end = first + len(matchers)
    return [(matchers[index - first], hits[index]) for index in sorted(hits)
            if first <= index < end]


def engagement_by(found: Scan, matchers: tuple[ActivityMatcher, ...],
                  inactivity: tuple[InactivityMatcher, ...], last: Activity | None,
                  last_ts: float, now_ts: float, ledger: list[LedgerEntry] | None = None,
                  fields: tuple[FitMatcher, ...] = (),
                  aggregates: tuple[AggregateMatcher, ...] = (),
                  values: Mapping[str, object | None] | None = None
                  ) -> tuple[float, list[Reason]]:
    """Engagement of one score: its matchers (numbered as the scan's `found` is), its
    person rules (on `values`) and aggregates, its inactivity rules and the latest
    engagement by its own definition."""
    reasons = [rule_reason(matcher, hits, ledger) for matcher, hits in _own_hits(found, matchers)]
    if fields or aggregates:
        reasons += extra_reasons(fields, aggregates, values, found, ledger)
    if inactivity:
        reasons += _inactivity(inactivity, last, now_ts - last_ts, ledger)
    return math.fsum([r.points for r in reasons]), reasons


def engagement_lines(found: Scan, matchers: tuple[ActivityMatcher, ...],
                     inactivity: tuple[InactivityMatcher, ...], last: Activity | None,
                     last_ts: float, now_ts: float, ledger: list[LedgerEntry],
                     fields: tuple[FitMatcher, ...] = (),
                     aggregates: tuple[AggregateMatcher, ...] = (),
                     values: Mapping[str, object | None] | None = None) -> float:
    """`engagement_by`'s points and ledger lines without its Reasons (a named score has
    no reasons of its own: the ledger explains it)."""
    points = [rule_points(matcher, hits, ledger) for matcher, hits in _own_hits(found, matchers)]
    if fields or aggregates:
        points += [r.points for r in extra_reasons(fields, aggregates, values, found, ledger)]
    if inactivity:
        points += [r.points for r in _inactivity(inactivity, last, now_ts - last_ts, ledger)]
    return math.fsum(points)


def _inactivity(matchers: tuple[InactivityMatcher, ...], last: Activity | None, idle: float,
                ledger: list[LedgerEntry] | None) -> list[Reason]:
    """One Reason per inactivity rule whose span the time since the last engagement
    (`idle`: inf without any) reaches; a person with no engagement on record counts as
    inactive."""
    reasons = [new_reason(m.rule_id, m.points, idle_text(idle, last, m.days_text),
                          last.occurred_at if last is not None else None)
               for m in matchers if idle >= m.seconds]
    if reasons and ledger is not None:
        activity_id = _activity_id(last) if last is not None else None
        ledger.extend(ledger_line(r.rule_id, r.points, r.detail, activity_id, r.evidence_at,
                                  1.0) for r in reasons)
    return reasons


def last_engagement(profile: Profile, engaged: frozenset[ActivityType],
                    now_ts: float) -> tuple[Activity | None, float]:
    """The latest activity of an `engaged` type up to now and its timestamp (-inf when
    none), ties broken as the scan does; for a named score whose engaged activities differ
    from the primary's (the scan tracks only the primary's)."""
    last: Activity | None = None
    last_ts = -math.inf
    for activity in profile.activities:
        if activity.type not in engaged:
            continue
        ts = activity.occurred_at.timestamp()
        if ts <= now_ts and (ts > last_ts or (ts == last_ts and _tie_later(activity, last))):
            last, last_ts = activity, ts
    return last, last_ts


def _activity_id(activity: Activity) -> str:
    """How a ledger names an activity: its connector and its id there."""
    return f"{activity.source}:{activity.source_id}"


def idle_text(idle: float, last: Activity | None, days_text: str) -> str:
    """"no engagement for 90+ days (last: page_view 2026-07-02, 95 days ago)", or "no
    engagement on record"."""
    if last is None:
        return "no engagement on record"
    return (f"no engagement for {days_text}+ days (last: {last.type.value} "
            f"{last.occurred_at.date().isoformat()}, {int(idle // DAY)} days ago)")


