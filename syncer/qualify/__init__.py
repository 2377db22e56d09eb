"""The qualification core: a pure function from (profile, model, now) to a Decision.

No I/O (except `load_model` reading the model file), no clock reads, no globals, no
randomness: the same profile, model and time always give the same decision, so decisions
can be replayed from the audit log and compared across model versions (`syncer model
diff` does exactly that).
"""

from __future__ import annotations

from datetime import datetime

from syncer.domain.types import Decision, LedgerEntry, Profile, Stage
from syncer.qualify.cards import named_cards, score_card
from syncer.qualify.construct import new_decision
from syncer.qualify.explain import breakdown, summarize
from syncer.qualify.lifecycle import band_holds, scored_stage, settle_stage
from syncer.qualify.model import Model, ModelError, load_model, parse_model
from syncer.qualify.routing import route
from syncer.qualify.scoring import engagement_from, fit_from, fit_grade, person_values, scan

__all__ = [
    "Model", "ModelError", "breakdown", "load_model", "parse_model", "qualify", "route",
    "summarize",
]


def qualify(profile: Profile, model: Model, now: datetime) -> Decision:
    """Score, grade and stage one profile at instant `now` (timezone-aware).

    The decision keeps the profile's current owner; assigning one is `route`'s job. Every
    point is one Reason: sum of reason points == fit_points + engagement_points, and
    score == round(fit_points + engagement_points). Reasons come in this order: fit rules,
    engagement rules (inactivity last), exactly one "stage.*" reason (what the score
    earns), then any "lifecycle.*" reasons (why the final stage differs from it).

    `scores` holds a ScoreCard per score, the primary one first (its total, fit,
    engagement and grade are `score`, `fit_points`, `engagement_points` and `fit_grade`),
    then the model's named scores in their order; each card's ledger adds up to its total
    (cards.py). Only the primary score decides the stage.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    plan = model.plan
    now_ts = now.timestamp()
    found = scan(profile, plan, now_ts)
    values = person_values(profile, plan.person_fields)
    ledger: list[LedgerEntry] = []
    fit, fit_reasons = fit_from(values, plan, ledger)
    fit_lines = len(ledger)
    engagement, engagement_reasons = engagement_from(found, plan, now_ts, ledger, values)
    score = round(fit + engagement)
    grade = fit_grade(fit, plan)
    primary = score_card(plan.score_name, fit, engagement, score, grade, ledger)
    scored, stage_reason = scored_stage(score, fit, engagement, grade, found, plan)
    band = None
    if plan.hysteresis and scored is Stage.MQL and profile.current_stage is Stage.RECYCLED:
        band = band_holds(score, fit, engagement, grade, plan)
    stage, lifecycle_reasons = settle_stage(scored, profile, plan, found, now_ts, values,
                                            band)
    cards = (primary, *named_cards(profile, plan, found, values, now_ts, primary,
                                   fit_lines)) if plan.named else (primary,)
    return new_decision(  # Decision(key, score, fit_points, ..., scores), faster
        profile.key, score, fit, engagement, grade, stage, profile.owner_email,
        (*fit_reasons, *engagement_reasons, stage_reason, *lifecycle_reasons),
        model.version, cards)
