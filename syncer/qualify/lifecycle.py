"""Which lifecycle stage a person gets: what the score earns, then the lifecycle rules.

Scoring proposes a stage: SQL on a recent hand-raise; MQL when the total (or the fit x
engagement matrix cell) qualifies; SUBSCRIBER when every activity is a subscriber activity
(newsletter sign-up, email); LEAD otherwise. The lifecycle then decides, in this order:

1. a stage owned by sales (SAL and later) is kept: a rep has taken the person on and the
   CRM's stage is now the rep's call;
2. a disqualify rule that holds makes the person DISQUALIFIED (even over a hand-raise: a
   competitor asking for a demo is still a competitor);
3. a DISQUALIFIED person stays so (unless `keep_disqualified: false`): scoring does not
   bring back someone taken out of the funnel; a person changing the CRM stage by hand does;
4. otherwise the later of the current and the scored stage: never backwards...
5. ...but with `qualification.hysteresis` (a band of points), a RECYCLED person whose
   score qualifies without the band to spare stays RECYCLED (see below)...
6. ...and a recycle rule moves back: people at its `from` stages with no engagement for
   its `inactive_days` move back to its `to` stage. Rules apply in order, each at most
   once, to the stage reached so far; this also catches someone whose score says MQL
   although they went quiet long ago, so they do not become MQL for one run and flip back
   the next.

Each step that changes the outcome adds a 0-point "lifecycle.*" Reason saying why.

Where a stage can flap, and so where the hysteresis band sits: scoring never moves a
stage down (step 4), so the score cannot take MQL away; only a recycle rule (inactivity)
or a person in a CRM can. The edge the score drives is the way back up, RECYCLED -> MQL.
A person whose score sits at the threshold cycles MQL -> RECYCLED (quiet for
`inactive_days`) -> MQL (one small activity tips the score over again) -> RECYCLED...,
and each return puts them in sales' queue as a new MQL. The band raises the bar for that
return only: a recycled person qualifies again at mql_score + band (and min_engagement +
band; in matrix mode with engagement - band), while a first qualification, a hand-raise
(SQL) and every other edge are unchanged. Making the recycle itself depend on the score
("keep MQL until the score drops below mql_score - band") would keep a quiet, well-fitting
person MQL forever, since fit alone can hold the score up. The band only ever holds a
person below MQL, so it can never keep anyone qualified, disqualified people included.
Its Reason is "lifecycle.hysteresis".
"""

from __future__ import annotations

from collections.abc import Mapping

from syncer.domain.types import SALES_OWNED_STAGES, Activity, Profile, Reason, Stage
from syncer.qualify.construct import new_reason
from syncer.qualify.plan import DisqualifyMatcher, Plan
from syncer.qualify.scoring import (
    Scan,
    activity_evidence,
    engagement_band,
    idle_text,
    person_values,
    scan,
    where_holds,
)


def latest_hand_raise(profile: Profile, plan: Plan, now_ts: float) -> Activity | None:
    """The most recent hand-raise in (now - hand_raise window, now], or None.

    Ties on time are broken by (source, source_id) so the cited evidence is deterministic.
    """
    return scan(profile, plan, now_ts).hand_raise


def scored_stage(score: int, fit: float, engagement: float, grade: str, found: Scan,
                 plan: Plan) -> tuple[Stage, Reason]:
    """The stage the score alone earns, with the Reason (0 points) that explains it."""
    raised = found.hand_raise
    if raised is not None:
        day = raised.occurred_at.date().isoformat()
        return Stage.SQL, Reason("stage.sql", 0.0, f"hand-raise: {raised.type.value} {day}",
                                 raised.occurred_at)
    if plan.mode == "matrix":
        band = engagement_band(engagement, plan)
        cell = f"fit {grade} x engagement {band} ({engagement:.4g})"
        if (grade, band) in plan.matrix:
            return Stage.MQL, Reason("stage.mql", 0.0, f"{cell} is in the matrix "
                                                        f"({plan.matrix_text})")
        why = f"not MQL: {cell} is not in the matrix ({plan.matrix_text})"
    else:
        assert plan.mql_score is not None
        measured = (float(score), fit, engagement)
        missed = [f"{name} {measured[at]:.4g} below {low_text}"
                  for name, at, low, low_text in plan.thresholds if measured[at] < low]
        if not missed:
            met = ", ".join([f"{name} {measured[at]:.4g} >= {low_text}"
                             for name, at, _, low_text in plan.thresholds])
            return Stage.MQL, new_reason("stage.mql", 0.0, met, None)
        why = "not MQL: " + ", ".join(missed)
    if found.only_subscriber:
        return Stage.SUBSCRIBER, new_reason("stage.subscriber", 0.0,
                                            f"only subscriber activities; {why}", None)
    return Stage.LEAD, new_reason("stage.lead", 0.0, why, None)


def band_holds(score: int, fit: float, engagement: float, grade: str, plan: Plan
               ) -> Reason | None:
    """The "lifecycle.hysteresis" Reason when a recycled person's score, which qualifies,
    does not clear the hysteresis band too (None when it does, or without a band). Call it
    only for a RECYCLED person whose scored stage is MQL."""
    band = plan.hysteresis
    if band <= 0.0:
        return None
    rule = "a recycled person qualifies again only with the hysteresis band to spare"
    if plan.mode == "matrix":
        cell = engagement_band(engagement - band, plan)
        if (grade, cell) in plan.matrix:
            return None
        return Reason("lifecycle.hysteresis", 0.0,
                      f"not MQL again: fit {grade} x engagement {cell} (engagement "
                      f"{engagement:.4g} - band {band:g}) is not in the matrix "
                      f"({plan.matrix_text}); {rule}")
    assert plan.mql_score is not None
    checks = [("score", float(score), "mql_score", plan.mql_score)]
    if plan.min_engagement is not None:
        checks.append(("engagement", engagement, "min_engagement", plan.min_engagement))
    missed = [f"{name} {value:.4g} below {low + band:g} ({setting} {low:g} + band {band:g})"
              for name, value, setting, low in checks if value < low + band]
    if not missed:
        return None
    return Reason("lifecycle.hysteresis", 0.0, f"not MQL again: {', '.join(missed)}; {rule}")


def settle_stage(scored: Stage, profile: Profile, plan: Plan, found: Scan, now_ts: float,
                 values: Mapping[str, object | None] | None = None,
                 band: Reason | None = None) -> tuple[Stage, list[Reason]]:
    """The final stage and the lifecycle Reasons (see the module docstring for the order).
    `values`: the person's field values if already read (see scoring.person_values);
    `band`: band_holds's Reason when the hysteresis band holds a recycled person back."""
    current = profile.current_stage
    if current in SALES_OWNED_STAGES:
        assert current is not None
        if current == scored:
            return current, []
        return current, [Reason(
            "lifecycle.sales_owned", 0.0,
            f"{current.value.upper()} is owned by sales; scoring would say "
            f"{scored.value.upper()}")]
    if plan.disqualify:
        if values is None:
            values = person_values(profile, plan.disqualify_fields)
        hit = disqualified(values, plan, found)
        if hit is not None:
            return Stage.DISQUALIFIED, [hit]
    if current is Stage.DISQUALIFIED and plan.keep_disqualified:
        return current, [Reason(
            "lifecycle.disqualified_kept", 0.0,
            f"stays DISQUALIFIED (scored {scored.value.upper()}): a disqualified person "
            "comes back only when someone changes the stage in the CRM")]
    stage, reasons = scored, []
    if current is not None and current.rank > scored.rank:
        stage = current
        reasons.append(Reason(
            "lifecycle.never_backwards", 0.0,
            f"stays {current.value.upper()} (scored {scored.value.upper()}): stages never "
            "move backwards"))
    elif band is not None and current is Stage.RECYCLED and scored is Stage.MQL:
        stage = current
        reasons.append(band)
    if plan.recycle:
        last = found.last_engaged
        idle = now_ts - found.last_engaged_ts  # inf without any engagement
        for rule in plan.recycle:
            if stage in rule.sources and idle >= rule.seconds:
                reasons = [r for r in reasons if r.rule_id != "lifecycle.never_backwards"]
                reasons.append(Reason(
                    rule.rule_id, 0.0,
                    f"{stage.value.upper()} -> {rule.target.value.upper()}: "
                    f"{idle_text(idle, last, rule.days_text)}",
                    last.occurred_at if last is not None else None))
                stage = rule.target
    return stage, reasons


def disqualified(values: Mapping[str, object | None], plan: Plan,
                 found: Scan) -> Reason | None:
    """The Reason of the first disqualify rule that holds, or None."""
    for rule in plan.disqualify:
        if rule.test is None:
            reason = _activity_hit(rule, found.disqualifying)
        else:
            how = rule.test(values[rule.field or ""])
            reason = None if how is None else Reason(rule.rule_id, 0.0,
                                                     f"disqualified: {rule.field} {how}")
        if reason is not None:
            return reason
    return None


def _activity_hit(rule: DisqualifyMatcher, activities: list[Activity]) -> Reason | None:
    latest: Activity | None = None
    for activity in activities:
        if activity.type is not rule.activity:
            continue
        if rule.where and not where_holds(rule.where, activity.attributes):
            continue
        if latest is None or (activity.occurred_at, activity.source, activity.source_id) > (
                latest.occurred_at, latest.source, latest.source_id):
            latest = activity
    if latest is None:
        return None
    evidence = activity_evidence(latest.attributes) if latest.attributes else ""
    return Reason(rule.rule_id, 0.0, f"disqualified: {latest.type.value}{evidence} "
                                     f"{latest.occurred_at.date().isoformat()}",
                  latest.occurred_at)
