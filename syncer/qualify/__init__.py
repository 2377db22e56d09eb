"""The qualification core: a pure function from (profile, model, now) to a Decision.

No I/O (except `load_model` reading the model file), no clock reads, no globals, no
randomness: the same profile, model and time always give the same decision, so decisions
can be replayed from the audit log and compared across model versions.
"""

from __future__ import annotations

from datetime import datetime

from syncer.domain import Decision, Profile
from syncer.qualify.explain import breakdown, summarize
from syncer.qualify.lifecycle import latest_hand_raise, scored_stage, settle_stage
from syncer.qualify.model import Model, ModelError, load_model, parse_model
from syncer.qualify.routing import route
from syncer.qualify.scoring import engagement_points, fit_grade, fit_points

__all__ = [
    "Model", "ModelError", "breakdown", "load_model", "parse_model", "qualify", "route",
    "summarize",
]


def qualify(profile: Profile, model: Model, now: datetime) -> Decision:
    """Score, grade and stage one profile at instant `now` (timezone-aware).

    The decision keeps the profile's current owner; assigning one is `route`'s job. Every
    point is one Reason: sum of reason points == fit_points + engagement_points, and
    score == round(fit_points + engagement_points).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    plan = model.plan
    now_ts = now.timestamp()
    fit, fit_reasons = fit_points(profile, plan)
    engagement, engagement_reasons = engagement_points(profile, plan, now_ts)
    score = round(fit + engagement)
    raised = latest_hand_raise(profile, plan, now_ts)
    scored, stage_reason = scored_stage(score, fit, engagement, raised, plan)
    stage, kept_reason = settle_stage(scored, profile.current_stage)
    reasons = (*fit_reasons, *engagement_reasons, stage_reason)
    if kept_reason is not None:
        reasons += (kept_reason,)
    return Decision(
        key=profile.key, score=score, fit_points=fit, engagement_points=engagement,
        fit_grade=fit_grade(fit, plan), stage=stage, owner_email=profile.owner_email,
        reasons=reasons, model_version=model.version)
