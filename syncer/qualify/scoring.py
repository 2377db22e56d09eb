"""Fit and engagement points: who the person is, and what they did recently.

`compile_plan` turns a validated Model into matchers once; `fit_points` and
`engagement_points` then run per profile without parsing or regex compilation.

Every point is accounted for by a Reason: one per matching fit rule, and one per engagement
rule that counted activities (it covers all of them and cites the most recent as evidence,
which keeps reasons few and the core fast). Totals use math.fsum (exactly rounded, so
independent of order): `sum(reason.points) == fit + engagement`.

Decay choice: positive engagement decays with a half-life (interest fades); negative
engagement (unsubscribe, bounce) does NOT decay: an address that bounced or opted out does
not become a better lead by waiting. Both stop counting once older than the lookback
window, which bounds how far back the model looks at all.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from syncer.domain import Activity, ActivityType, Profile, Reason, Stage

if TYPE_CHECKING:
    from syncer.qualify.model import FitRule, Model

#: A compiled fit condition: how the value matched (for the Reason), or None.
FitTest = Callable[[object], str | None]
#: Attributes shown as evidence in an engagement Reason, first present wins.
EVIDENCE_ATTRIBUTES = ("url", "asset", "campaign", "form", "email")


@dataclass(frozen=True, slots=True)
class FitMatcher:
    rule_id: str
    field: str
    points: float
    group: str | None
    test: FitTest


@dataclass(frozen=True, slots=True)
class ActivityMatcher:
    """A compiled engagement rule; `where` holds (attribute, lower-cased text) pairs."""

    rule_id: str
    index: int
    activity: ActivityType
    points: float
    points_text: str
    decays: bool
    where: tuple[tuple[str, str], ...]
    max_count: int | None
    max_points: float | None


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the core needs from a model, precomputed once per model."""

    fit_fields: tuple[str, ...]
    fit: tuple[FitMatcher, ...]
    engagement: tuple[ActivityMatcher, ...]
    by_activity: Mapping[ActivityType, tuple[ActivityMatcher, ...]]
    decay_per_second: float
    lookback_seconds: float
    hand_raise: frozenset[ActivityType]
    hand_raise_seconds: float
    mql_score: float
    min_fit: float | None
    min_engagement: float | None
    grades: tuple[tuple[str, float], ...]
    assign_at: Stage


def compile_plan(model: Model) -> Plan:
    """Compile a validated model; called once when the Model is built."""
    fit = tuple(FitMatcher(f"fit.{r.id}", r.field, r.points, r.group, _fit_test(r))
                for r in model.fit.rules)
    half_life = model.engagement.half_life_days
    engagement = tuple(
        ActivityMatcher(
            rule_id=f"engagement.{r.id}", index=i, activity=r.activity, points=r.points,
            points_text=f"{r.points:g}",
            decays=r.points > 0 and half_life is not None,
            where=tuple((k, v.strip().lower()) for k, v in sorted((r.where or {}).items())),
            max_count=r.max_count, max_points=r.max_points)
        for i, r in enumerate(model.engagement.rules))
    by_activity: dict[ActivityType, tuple[ActivityMatcher, ...]] = {}
    for matcher in engagement:
        by_activity[matcher.activity] = (*by_activity.get(matcher.activity, ()), matcher)
    q = model.qualification
    return Plan(
        fit_fields=tuple(dict.fromkeys(r.field for r in model.fit.rules)), fit=fit,
        engagement=engagement, by_activity=types.MappingProxyType(by_activity),
        decay_per_second=math.log(2) / (half_life * 86_400) if half_life else 0.0,
        lookback_seconds=model.engagement.lookback_days * 86_400,
        hand_raise=frozenset(q.hand_raise),
        hand_raise_seconds=(q.hand_raise_days or model.engagement.lookback_days) * 86_400,
        mql_score=q.mql_score, min_fit=q.min_fit, min_engagement=q.min_engagement,
        grades=tuple((b.grade, b.min) for b in model.fit.grades),
        assign_at=Stage(model.routing.assign_at))


def _fit_test(rule: FitRule) -> FitTest:
    """Build the matcher for one rule; each closure does one cheap comparison."""
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


def fit_points(profile: Profile, plan: Plan) -> tuple[float, list[Reason]]:
    """Points for the person's attributes. Within a `group` only the first match counts."""
    values = {name: profile.first(name) for name in plan.fit_fields}
    if "email" in values and values["email"] is None and "@" in profile.key:
        values["email"] = profile.key
    reasons: list[Reason] = []
    taken: set[str] = set()
    for matcher in plan.fit:
        if matcher.group is not None and matcher.group in taken:
            continue
        how = matcher.test(values[matcher.field])
        if how is None:
            continue
        if matcher.group is not None:
            taken.add(matcher.group)
        reasons.append(Reason(matcher.rule_id, matcher.points, f"{matcher.field} {how}"))
    return math.fsum(r.points for r in reasons), reasons


def fit_grade(fit: float, plan: Plan) -> str:
    """The first band whose min the fit reaches; below every band, the last (worst) one."""
    for grade, low in plan.grades:
        if fit >= low:
            return grade
    return plan.grades[-1][0]


def engagement_points(profile: Profile, plan: Plan,
                      now_ts: float) -> tuple[float, list[Reason]]:
    """Decayed, capped points for activities in [now - lookback, now]; future ones are
    ignored (clock skew between systems must not score what has not happened)."""
    by_activity, lookback = plan.by_activity, plan.lookback_seconds
    found: dict[int, list[tuple[float, Activity]]] = {}
    for activity in profile.activities:
        matchers = by_activity.get(activity.type)
        if matchers is None:
            continue
        age = now_ts - activity.occurred_at.timestamp()
        if age < 0.0 or age > lookback:
            continue
        for matcher in matchers:
            if matcher.where and not _where_holds(matcher.where, activity.attributes):
                continue
            found.setdefault(matcher.index, []).append((age, activity))
    reasons = [_rule_reason(matcher, found[matcher.index], plan.decay_per_second)
               for matcher in plan.engagement if matcher.index in found]
    return math.fsum(r.points for r in reasons), reasons


def _where_holds(where: tuple[tuple[str, str], ...], attributes: Mapping[str, str]) -> bool:
    for key, text in where:
        value = attributes.get(key)
        if value is None or text not in value.lower():
            return False
    return True


def _recency(hit: tuple[float, Activity]) -> tuple[float, str, str]:
    return hit[0], hit[1].source, hit[1].source_id


def _rule_reason(matcher: ActivityMatcher, hits: list[tuple[float, Activity]],
                 decay_per_second: float) -> Reason:
    """One Reason for all activities a rule counted, citing the most recent one as
    evidence. `max_count` keeps the most recent N (they are worth the most); `max_points`
    trims the activity that crosses the cap and ignores older ones."""
    if len(hits) > 1:
        hits.sort(key=_recency)
    dropped = 0
    if matcher.max_count is not None and len(hits) > matcher.max_count:
        dropped = len(hits) - matcher.max_count
        hits = hits[:matcher.max_count]
    base, cap = matcher.points, matcher.max_points
    rate = decay_per_second if matcher.decays else 0.0
    parts: list[float] = []
    running, capped = 0.0, False
    for n, (age, _) in enumerate(hits):
        points = base * math.exp(-age * rate) if rate else base
        if cap is not None and abs(running + points) > cap:
            capped, points = True, math.copysign(cap, base) - running
            dropped += len(hits) - n - 1
            if points != 0.0:
                parts.append(points)
            break
        parts.append(points)
        running += points
    total = math.fsum(parts)
    latest_age, latest = hits[0]
    evidence = _evidence(latest.attributes) if latest.attributes else ""
    day = latest.occurred_at.date().isoformat()
    if len(parts) == 1:
        detail = f"{latest.type}{evidence} {day}"
        factor = math.exp(-latest_age * rate)
        if factor < 0.995:
            detail += f", {matcher.points_text} decayed x{factor:.2f}"
    else:
        detail = f"{len(parts)}x {latest.type}, latest{evidence} {day}; " \
                 f"{matcher.points_text} each"
        if rate and not capped:
            detail += f", decayed to {total:.2f}"
    if capped:
        detail += f" (capped at {cap:g})"
    if dropped:
        detail += f" ({dropped} older not counted)"
    return Reason(matcher.rule_id, total, detail, latest.occurred_at)


def _evidence(attributes: Mapping[str, str]) -> str:
    for key in EVIDENCE_ATTRIBUTES:
        value = attributes.get(key)
        if value:
            if key == "url":
                rest = value.split("://", 1)[-1]
                slash = rest.find("/")
                return " " + (rest[slash:] if slash >= 0 else rest)[:80]
            return f" '{value[:80]}'"
    return ""
