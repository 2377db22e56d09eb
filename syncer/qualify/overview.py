"""A short overview of a model, one line per section (`syncer model show`, the web admin)."""

from __future__ import annotations

from syncer.qualify.model import EngagementRule, FitRule, Model
from syncer.qualify.named_schema import NamedScore


def describe(model: Model) -> list[str]:
    """A short overview of a model: what each section does, one line each."""
    fit, engagement, q, life = (model.fit, model.engagement, model.qualification,
                                model.lifecycle)
    grades = ", ".join(f"{b.grade} >= {b.min:g}" for b in fit.grades)
    if engagement.decay_steps:
        decay = "steps " + ", ".join(f"<= {s.max_age_days:g}d x{s.factor:g}"
                                     for s in engagement.decay_steps)
    elif engagement.half_life_days:
        decay = f"half-life {engagement.half_life_days:g} days"
    else:
        decay = "none"
    inactive = [r for r in engagement.rules if r.kind() == "inactivity"]
    kinds = [r.kind() for r in engagement.rules]
    if q.mode == "matrix":
        bands = ", ".join(f"{b.band} >= {b.min:g}" for b in engagement.bands or ())
        rule = f"matrix {', '.join(q.matrix or ())} (bands {bands})"
    else:
        parts = [f"score >= {q.mql_score:g}"]
        parts += [f"fit >= {q.min_fit:g}"] if q.min_fit is not None else []
        parts += ([f"engagement >= {q.min_engagement:g}"] if q.min_engagement is not None
                  else [])
        rule = "total: " + ", ".join(parts)
    hand = ", ".join(t.value for t in q.hand_raise)
    window = f"{q.hand_raise_days:g}" if q.hand_raise_days else f"{engagement.lookback_days:g}"
    recycle = "; ".join(f"{r.id} ({'/'.join(r.from_)} -> {r.to} after "
                        f"{r.inactive_days:g} days)" for r in life.recycle) or "none"
    return [
        f"model {model.version}" + (f": {model.description}" if model.description else ""),
        f"  fit: {len(fit.rules)} rules ({_fit_kinds(fit.rules)}); grades {grades}",
        f"  engagement: {kinds.count('activity')} activity rules, "
        f"{kinds.count('aggregate')} aggregates, {kinds.count('field')} person-field rules, "
        f"{len(inactive)} inactivity rules ({_inactivity(inactive)}); decay {decay}; "
        f"lookback {engagement.lookback_days:g} days",
        *_fields_read(model),
        f"  MQL when {rule}" + (f"; a recycled person again only with {q.hysteresis:g} "
                                f"points to spare (hysteresis)" if q.hysteresis else ""),
        f"  SQL on a hand-raise within {window} days: {hand}",
        "  subscriber activities: "
        + (", ".join(t.value for t in life.subscriber_activities) or "none (no subscriber "
                                                                       "stage)"),
        f"  recycle: {recycle}",
        "  disqualify: " + (", ".join(r.id for r in life.disqualify) or "none")
        + f"; disqualified is {'kept' if life.keep_disqualified else 're-evaluated'}",
        f"  scores: {model.primary_score} (the one stages and routing read)"
        + "".join(f"; {named.name} ({_named_parts(named)})" for named in model.scores),
        f"  routing: assign at {model.routing.assign_at}",
    ]


def _named_parts(named: NamedScore) -> str:
    fit = f"{len(named.fit.rules)} fit rules" if named.fit else "the main fit"
    engagement = (f"{len(named.engagement.rules)} engagement rules" if named.engagement
                  else "the main engagement")
    return f"{fit}, {engagement}"


def _fit_kinds(rules: tuple[FitRule, ...]) -> str:
    kinds = [r.valued_kind() for r in rules]
    return ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}"
                     for k in ("condition", "table", "bins") if k in kinds) or "none"


def _fields_read(model: Model) -> list[str]:
    """The mapped fields the model reads beyond the standard ones: each must be mapped by
    a connector (`person_fields`) or be a column of the history a backtest reads."""
    from syncer.qualify.model import PERSON_FIELDS

    standard = set(PERSON_FIELDS)
    extra = [f for f in model.plan.person_fields if f not in standard]
    return [f"  reads mapped fields: {', '.join(extra)}"] if extra else []


def _inactivity(rules: list[EngagementRule]) -> str:
    return ", ".join(f"{r.points:g} after {r.inactive_days:g} days" for r in rules) or "-"
