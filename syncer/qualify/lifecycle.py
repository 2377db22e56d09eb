"""Which lifecycle stage a score earns, and the rule that stages never move backwards.

Scoring proposes a stage (SQL on a recent hand-raise, MQL on enough score and fit, LEAD
otherwise); the lifecycle then keeps what is already known: a person never goes back to an
earlier stage, and a stage owned by sales (SAL and later) is never changed by scoring,
because a rep has taken the person on and the CRM's stage is now the rep's call.
"""

from __future__ import annotations

from syncer.domain import SALES_OWNED_STAGES, Activity, Profile, Reason, Stage
from syncer.qualify.scoring import Plan


def latest_hand_raise(profile: Profile, plan: Plan, now_ts: float) -> Activity | None:
    """The most recent hand-raise in (now - hand_raise window, now], or None.

    Ties on time are broken by (source, source_id) so the cited evidence is deterministic.
    """
    best: Activity | None = None
    best_key: tuple[float, str, str] | None = None
    for activity in profile.activities:
        if activity.type not in plan.hand_raise:
            continue
        occurred = activity.occurred_at.timestamp()
        age = now_ts - occurred
        if age < 0.0 or age > plan.hand_raise_seconds:
            continue
        key = (occurred, activity.source, activity.source_id)
        if best_key is None or key > best_key:
            best, best_key = activity, key
    return best


def scored_stage(score: int, fit: float, engagement: float, hand_raise: Activity | None,
                 plan: Plan) -> tuple[Stage, Reason]:
    """The stage the score alone earns, with the Reason (0 points) that explains it."""
    if hand_raise is not None:
        day = hand_raise.occurred_at.date().isoformat()
        return Stage.SQL, Reason("stage.sql", 0.0,
                                 f"hand-raise: {hand_raise.type.value} {day}",
                                 hand_raise.occurred_at)
    checks = [("score", float(score), plan.mql_score)]
    if plan.min_fit is not None:
        checks.append(("fit", fit, plan.min_fit))
    if plan.min_engagement is not None:
        checks.append(("engagement", engagement, plan.min_engagement))
    missed = [f"{name} {value:.4g} below {low:g}" for name, value, low in checks
              if value < low]
    if missed:
        return Stage.LEAD, Reason("stage.lead", 0.0, "not MQL: " + ", ".join(missed))
    met = ", ".join(f"{name} {value:.4g} >= {low:g}" for name, value, low in checks)
    return Stage.MQL, Reason("stage.mql", 0.0, met)


def settle_stage(scored: Stage, current: Stage | None) -> tuple[Stage, Reason | None]:
    """Final stage: sales-owned stages are kept; otherwise the later of current and scored.

    Returns the Reason (0 points) when the final stage differs from the scored one.
    """
    if current is None or current == scored:
        return scored, None
    if current in SALES_OWNED_STAGES:
        return current, Reason(
            "lifecycle.sales_owned", 0.0,
            f"{current.value.upper()} is owned by sales; scoring would say "
            f"{scored.value.upper()}")
    if current.rank > scored.rank:
        return current, Reason(
            "lifecycle.never_backwards", 0.0,
            f"stays {current.value.upper()} (scored {scored.value.upper()}): stages never "
            "move backwards")
    return scored, None
