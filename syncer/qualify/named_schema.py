"""The `scores:` section of a model: named scores beside the primary one.

A revops team that sells more than one product line wants a score per line ("how ready is
this person for Analytics?") without a second model: the stage and the owner still follow
one score (the primary one, the model's top-level `fit` and `engagement`), and each named
score is computed from the same profile at the same instant, with its own ledger, and can
be written to its own CRM fields (config `fields.scores`).

What a named score inherits from the primary score, and why:

- a section left out is the primary's section as it is: `fit` left out means the same fit
  rules and grades (the same people fit, only the interest differs), `engagement` left out
  means the same engagement rules (a different ideal customer for the same behaviour). At
  least one of the two must be given, or the score would be a copy of the primary one;
- a section given has its own `rules` (never merged with the primary's: a named score's
  points are exactly what its own rules say); its `grades` default to the primary's
  `fit.grades`, and its decay (`half_life_days` or `decay_steps`, taken as one setting),
  `lookback_days` and `engaged_activities` default to the primary's `engagement` settings,
  so one decay policy applies everywhere unless a line needs another;
- `engagement.bands` is not available: bands serve the qualification matrix, and only the
  primary score qualifies people.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from syncer.qualify.conditions import Number, Spec
from syncer.qualify.schema import (
    DecayStep,
    EngagedActivities,
    Engagement,
    EngagementRule,
    Fit,
    FitRule,
    GradeBand,
    check_decay,
    falling,
    unique,
)

#: A score's name: what `fields.scores` in syncer.yaml refers to.
ScoreName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=40)]
#: The primary score's name unless the model says otherwise (`primary_score:`).
PRIMARY_SCORE = "primary"


class NamedFit(Spec):
    """A named score's own fit rules; `grades` default to the model's `fit.grades`."""

    rules: tuple[FitRule, ...] = ()
    grades: tuple[GradeBand, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> NamedFit:
        unique([r.id for r in self.rules], "fit rule id")
        if self.grades is not None:
            unique([b.grade for b in self.grades], "grade")
            falling([b.min for b in self.grades], "grades", "bands")
        return self


class NamedEngagement(Spec):
    """A named score's own engagement rules; the settings left out are the primary's."""

    half_life_days: Number | None = Field(default=None, gt=0)
    decay_steps: tuple[DecayStep, ...] | None = Field(default=None, min_length=1)
    lookback_days: Number | None = Field(default=None, gt=0)
    engaged_activities: EngagedActivities = Field(default=None, min_length=1)
    rules: tuple[EngagementRule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> NamedEngagement:
        unique([r.id for r in self.rules], "engagement rule id")
        check_decay(self.half_life_days, self.decay_steps)
        return self


class NamedScore(Spec):
    """One named score: `name` (what the config's `fields.scores` maps to CRM fields), and
    `fit` and/or `engagement` of its own (see the module docstring for what is inherited)."""

    name: ScoreName
    description: str = ""
    fit: NamedFit | None = None
    engagement: NamedEngagement | None = None

    @model_validator(mode="after")
    def _own_rules(self) -> NamedScore:
        if self.fit is None and self.engagement is None:
            raise ValueError(f"score '{self.name}' has neither `fit` nor `engagement`, so it "
                             "would be a copy of the primary score. Fix: give it its own "
                             "`engagement: {rules: [...]}` and/or `fit: {rules: [...]}`")
        return self


def check_names(primary: str, scores: tuple[NamedScore, ...]) -> None:
    """Score names are unique, the primary's included (the config maps them by name)."""
    names = [primary, *(s.name for s in scores)]
    seen = sorted({n for n in names if names.count(n) > 1})
    if seen:
        shown = ", ".join(f"'{n}'" for n in seen)
        raise ValueError(f"score name {shown} is used more than once (the primary score is "
                         f"'{primary}', set by `primary_score`). Fix: give every entry of "
                         "`scores` its own name, different from the primary score's")


def effective_fit(primary: Fit, own: NamedFit | None) -> Fit | None:
    """The fit section a named score runs: None when it is the primary's (reused as is)."""
    if own is None:
        return None
    return Fit(rules=own.rules, grades=own.grades or primary.grades)


def effective_engagement(primary: Engagement, own: NamedEngagement | None
                         ) -> Engagement | None:
    """The engagement section a named score runs: None when it is the primary's; else its
    own rules with the primary's decay, lookback and engaged activities where it sets none.
    Decay is inherited as one setting: a score that sets `half_life_days` does not also get
    the primary's `decay_steps`."""
    if own is None:
        return None
    if own.half_life_days is not None or own.decay_steps is not None:
        half_life, steps = own.half_life_days, own.decay_steps
    else:
        half_life, steps = primary.half_life_days, primary.decay_steps
    engaged = own.engaged_activities or tuple(sorted(primary.engaged())) or None
    return Engagement(half_life_days=half_life, decay_steps=steps,
                      lookback_days=own.lookback_days or primary.lookback_days,
                      engaged_activities=engaged, rules=own.rules)
