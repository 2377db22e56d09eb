"""Fit and engagement points: who the person is, and what they did recently.

`scan` reads a profile's activities once and sorts what every rule needs out of them (the
activities each engagement rule counts, the latest engagement, the latest hand-raise,
whether the person only ever subscribed, activities that disqualify), so the rest of the
core never loops over activities again.

Every point is accounted for by a Reason: one per matching fit rule, one per engagement
rule that counted activities (it covers all of them and cites the most recent as evidence,
which keeps reasons few and the core fast), and one per inactivity rule that fired. Totals
use math.fsum (exactly rounded, so independent of order): `sum(reason.points) == fit +
engagement`.

Decay choice: positive engagement fades (half-life or steps: interest fades); negative
engagement (unsubscribe, bounce) does NOT fade: an address that bounced or opted out does
not become a better lead by waiting. Both stop counting once older than the lookback
window, which bounds how far back the model looks at all.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

from syncer.domain import Activity, Profile, Reason
from syncer.qualify.plan import (
    DAY,
    WINDOW_ORIGIN,
    ActivityMatcher,
    FitMatcher,
    FitTest,
    Plan,
    compile_plan,
)

__all__ = [
    "ActivityMatcher", "FitMatcher", "FitTest", "Plan", "Scan", "compile_plan",
    "engagement_from", "engagement_points", "fit_from", "fit_grade", "fit_points",
    "person_values", "scan",
]

#: Attributes shown as evidence in an engagement Reason, first present wins.
EVIDENCE_ATTRIBUTES = ("url", "asset", "campaign", "form", "email")

Hit = tuple[float, Activity]  # (age in seconds, activity)


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
    routes, lookback = plan.routes, plan.lookback_seconds
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
        matchers, engaged, hand_raise, disqualify, subscriber = routes[activity.type]
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
        if not matchers or age > lookback:
            continue
        for index, horizon, where in matchers:
            if age > horizon:
                continue
            if where and not where_holds(where, activity.attributes):
                continue
            hits = found.get(index)
            if hits is None:
                found[index] = [(age, activity)]
            else:
                hits.append((age, activity))
    return Scan(found, last, last_ts, raised, only_subscriber and seen, disqualifying)


# ---------------------------------------------------------------- fit


def person_values(profile: Profile, fields: tuple[str, ...]) -> dict[str, object | None]:
    """The merged value of each field (first non-empty record wins; "" counts as missing);
    `email` falls back to the profile key, which is the normalized email."""
    records = profile.records
    if len(records) == 1:  # the common case, without Profile.first's loop
        record = records[0]
        values = {name: (None if (v := getattr(record, name)) == "" else v) for name in fields}
    else:
        values = {name: profile.first(name) for name in fields}
    if "email" in values and values["email"] is None and "@" in profile.key:
        values["email"] = profile.key
    return values


def fit_points(profile: Profile, plan: Plan) -> tuple[float, list[Reason]]:
    """Points for the person's attributes. Within a `group` only the first match counts."""
    return fit_from(person_values(profile, plan.fit_fields), plan)


def fit_from(values: Mapping[str, object | None], plan: Plan) -> tuple[float, list[Reason]]:
    reasons: list[Reason] = []
    taken: set[str] = set()
    for matcher in plan.fit:
        group = matcher.group
        if group is not None and group in taken:
            continue
        how = matcher.test(values[matcher.field])
        if how is None:
            continue
        if group is not None:
            taken.add(group)
        reasons.append(Reason(matcher.rule_id, matcher.points, f"{matcher.field} {how}"))
    return math.fsum([r.points for r in reasons]), reasons


def fit_grade(fit: float, plan: Plan) -> str:
    """The first band whose min the fit reaches; below every band, the last (worst) one."""
    for grade, low in plan.grades:
        if fit >= low:
            return grade
    return plan.grades[-1][0]


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
    return engagement_from(scan(profile, plan, now_ts), plan, now_ts)


def engagement_from(found: Scan, plan: Plan, now_ts: float) -> tuple[float, list[Reason]]:
    hits = found.found
    matchers = plan.engagement
    reasons = [_rule_reason(matchers[index], hits[index]) for index in sorted(hits)]
    if plan.inactivity:
        reasons += _inactivity(found, plan, now_ts)
    return math.fsum(r.points for r in reasons), reasons


def _inactivity(found: Scan, plan: Plan, now_ts: float) -> list[Reason]:
    """One Reason per inactivity rule whose span the time since the last engagement
    reaches; a person with no engagement on record counts as inactive."""
    last = found.last_engaged
    idle = now_ts - found.last_engaged_ts  # inf without any engagement
    return [Reason(m.rule_id, m.points, idle_text(idle, last, m.days_text),
                   last.occurred_at if last is not None else None)
            for m in plan.inactivity if idle >= m.seconds]


def idle_text(idle: float, last: Activity | None, days_text: str) -> str:
    """"no engagement for 90+ days (last: page_view 2026-07-02, 95 days ago)", or "no
    engagement on record"."""
    if last is None:
        return "no engagement on record"
    return (f"no engagement for {days_text}+ days (last: {last.type.value} "
            f"{last.occurred_at.date().isoformat()}, {int(idle // DAY)} days ago)")


def where_holds(where: tuple[tuple[str, str], ...], attributes: Mapping[str, str]) -> bool:
    for key, text in where:
        value = attributes.get(key)
        if value is None or text not in value.lower():
            return False
    return True


def _recency(hit: Hit) -> tuple[float, str, str]:
    return hit[0], hit[1].source, hit[1].source_id



def _windowed(matcher: ActivityMatcher, hits: list[Hit],
              values: list[float]) -> tuple[list[tuple[float, int]], int]:
    """Group recency-sorted hits by fixed window and cap each window's total. Returns
    (window total, activities in it) newest window first, and how many windows hit the cap.
    Sorted by recency, the hits of one window are next to each other."""
    assert matcher.window is not None and matcher.window_points is not None
    window, cap = matcher.window, matcher.window_points
    units: list[tuple[float, int]] = []
    capped = 0
    current: int | None = None
    group: list[float] = []
    for (_, activity), value in zip(hits, values, strict=True):
        slot = math.floor((activity.occurred_at.timestamp() - WINDOW_ORIGIN) / window)
        if slot != current and group:
            total = math.fsum(group)
            if abs(total) > cap:
                total, capped = math.copysign(cap, total), capped + 1
            units.append((total, len(group)))
            group = []
        current = slot
        group.append(value)
    total = math.fsum(group)
    if abs(total) > cap:
        total, capped = math.copysign(cap, total), capped + 1
    units.append((total, len(group)))
    return units, capped


def _rule_reason(matcher: ActivityMatcher, hits: list[Hit]) -> Reason:
    """One Reason for all activities a rule counted, citing the most recent one as
    evidence. `max_count` keeps the most recent N (they are worth the most); window caps
    then bound each fixed window; `max_points` trims the unit that crosses the cap and
    ignores older ones. Each step can only lower a total as activities are removed and
    only raise it as activities are added, which is what the properties rely on."""
    if len(hits) == 1 and matcher.window is None:
        return _one_activity(matcher, hits[0])
    hits.sort(key=_recency)
    dropped = 0
    if matcher.max_count is not None and len(hits) > matcher.max_count:
        dropped = len(hits) - matcher.max_count
        hits = hits[:matcher.max_count]
    base, decay = matcher.points, matcher.decay
    values = [base * decay(age) for age, _ in hits] if decay else [base] * len(hits)
    windows_capped, cap = 0, matcher.max_points
    if matcher.window is not None:
        units, windows_capped = _windowed(matcher, hits, values)
    elif cap is not None:
        units = [(value, 1) for value in values]
    if cap is None:
        parts = values if matcher.window is None else [value for value, _ in units]
        counted, capped = len(hits), False
    else:
        parts, counted, capped, running = [], 0, False, 0.0
        for n, (value, size) in enumerate(units):
            if abs(running + value) > cap:
                capped, value = True, math.copysign(cap, base) - running
                dropped += sum(s for _, s in units[n + 1:])
                if value != 0.0:
                    parts.append(value)
                    counted += size
                else:
                    dropped += size
                break
            parts.append(value)
            counted += size
            running += value
    total = math.fsum(parts) if len(parts) > 1 else parts[0] if parts else 0.0
    latest_age, latest = hits[0]
    evidence = activity_evidence(latest.attributes) if latest.attributes else ""
    day = latest.occurred_at.date().isoformat()
    if counted == 1:
        detail = f"{matcher.activity_text}{evidence} {day}"
        factor = decay(latest_age) if decay else 1.0
        if factor < 0.995:
            detail += f", {matcher.points_text} decayed x{factor:.2f}"
    else:
        detail = (f"{counted}x {matcher.activity_text}, latest{evidence} {day}; "
                  f"{matcher.points_text} each")
        if decay and not capped and not windows_capped:
            detail += f", decayed to {total:.2f}"
    if windows_capped:
        detail += (f" ({matcher.window_text}: reached in {windows_capped} "
                   f"window{'s' if windows_capped > 1 else ''})")
    if capped:
        detail += f" (capped at {cap:g})"
    if dropped:
        detail += f" ({dropped} older not counted)"
    return Reason(matcher.rule_id, total, detail, latest.occurred_at)


def _one_activity(matcher: ActivityMatcher, hit: Hit) -> Reason:
    """`_rule_reason` for the most common case, one activity: same result, less work."""
    age, activity = hit
    decay, cap = matcher.decay, matcher.max_points
    factor = decay(age) if decay is not None else 1.0
    value = matcher.points * factor
    evidence = activity_evidence(activity.attributes) if activity.attributes else ""
    detail = f"{matcher.activity_text}{evidence} {activity.occurred_at.date().isoformat()}"
    if factor < 0.995:
        detail += f", {matcher.points_text} decayed x{factor:.2f}"
    if cap is not None and abs(value) > cap:
        value = math.copysign(cap, matcher.points)
        detail += f" (capped at {cap:g})"
    return Reason(matcher.rule_id, value, detail, activity.occurred_at)


def activity_evidence(attributes: Mapping[str, str]) -> str:
    """" /pricing" for a URL (its path), " 'Contact us'" for other attributes, "" if none.
    The first of EVIDENCE_ATTRIBUTES present wins."""
    if len(attributes) == 1:  # the common case: one attribute, no search
        for key, value in attributes.items():
            if key in _EVIDENCE_KEYS:
                return _shown(key, value) if value else ""
            return ""
    for key in EVIDENCE_ATTRIBUTES:
        found = attributes.get(key)
        if found:
            return _shown(key, found)
    return ""


_EVIDENCE_KEYS = frozenset(EVIDENCE_ATTRIBUTES)


@functools.lru_cache(maxsize=4096)
def _shown(key: str, value: str) -> str:
    """Pure and memoized: the same few URLs and form names recur across many people."""
    if key == "url":
        rest = value.split("://", 1)[-1]
        slash = rest.find("/")
        return " " + (rest[slash:] if slash >= 0 else rest)[:80]
    return f" '{value[:80]}'"
