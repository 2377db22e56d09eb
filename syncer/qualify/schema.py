"""The scoring sections of the model file an admin writes: fit and engagement.

Each class validates one section and says what is wrong in the admin's terms with a "Fix:".
Checks that need two sections at once (a matrix naming fit grades and engagement bands)
live on `Model` in model.py; `qualification` and `lifecycle` are in stage_schema.py. Every
section forbids unknown keys, so a model written for a newer syncer fails loudly on an
older one instead of being half applied.
"""

from __future__ import annotations

import difflib
import itertools
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from syncer.domain.types import ActivityType
from syncer.qualify.conditions import (
    Number,
    PersonCondition,
    PersonField,
    Spec,
    ValueRule,
    check_bins,
)

ACTIVITY_TYPES: tuple[str, ...] = tuple(t.value for t in ActivityType)
DEFAULT_HAND_RAISE: tuple[ActivityType, ...] = (
    ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES, ActivityType.PRICING_REQUEST,
)

RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)]
Label = Annotated[str, Field(min_length=1, max_length=8)]


class AttributeCondition(PersonCondition):
    """A condition on one activity attribute in a `where` (no `field`: the key names the
    attribute)."""

    @model_validator(mode="after")
    def _one_condition(self) -> AttributeCondition:
        if self.field is not None:
            raise ValueError("a `where` condition takes no `field`: the key names the "
                             "attribute. Fix: remove `field`")
        self.check_condition("a `where` condition")
        return self


#: attribute -> text it must contain (as before conditions existed), or a condition
Where = dict[str, Annotated[str, Field(min_length=1)] | AttributeCondition]


def activity_type(value: object) -> ActivityType:
    """Validate one activity type name, naming the valid ones (and the likely one) if wrong."""
    if isinstance(value, ActivityType):
        return value
    if isinstance(value, str) and value in ACTIVITY_TYPES:
        return ActivityType(value)
    guess = difflib.get_close_matches(str(value), ACTIVITY_TYPES, n=1)
    hint = f" (did you mean '{guess[0]}'?)" if guess else ""
    raise ValueError(f"unknown activity type {value!r}. Fix: use one of: "
                     f"{', '.join(ACTIVITY_TYPES)}{hint}")


def activity_types(value: object) -> object:
    return [activity_type(v) for v in value] if isinstance(value, list) else value


#: An engagement section's `engaged_activities` (the primary's and a named score's): the
#: activity types that count as engagement, each name read as activity_type reads it.
EngagedActivities = Annotated[tuple[ActivityType, ...] | None, BeforeValidator(activity_types)]


def unique(values: list[str], what: str) -> None:
    seen = sorted({v for v in values if values.count(v) > 1})
    if seen:
        raise ValueError(f"duplicate {what}: {', '.join(seen)}. Fix: make each one unique")


def falling(mins: list[float], what: str, label: str) -> None:
    if any(a <= b for a, b in itertools.pairwise(mins)):
        raise ValueError(f"{what} must be listed from best to worst with strictly falling "
                         f"`min` (got {mins}). Fix: reorder the {label}; a value below the "
                         f"last one's min still gets the last {label[:-1]}")


# ---------------------------------------------------------------- fit


class FitRule(ValueRule):
    """Points for who the person is: a condition with points, a points table or bins
    (conditions.py). `group` makes a ladder of conditions: first match in a group wins."""

    id: RuleId
    field: PersonField  # required here (optional in a disqualify rule)
    group: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_condition(self) -> FitRule:
        self.check_rule("a fit rule", self.field)
        if self.group is not None and self.valued_kind() != "condition":
            raise ValueError(f"a `{self.valued_kind()}` rule cannot be in a group (a ladder "
                             "picks the first condition that holds). Fix: remove `group`")
        return self


class GradeBand(Spec):
    grade: Label
    min: Number


class Fit(Spec):
    rules: tuple[FitRule, ...] = ()
    grades: tuple[GradeBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Fit:
        unique([r.id for r in self.rules], "fit rule id")
        unique([b.grade for b in self.grades], "grade")
        falling([b.min for b in self.grades], "grades", "bands")
        return self


# ---------------------------------------------------------------- engagement


class DecayStep(Spec):
    """Activities up to `max_age_days` old are worth `factor` of their points."""

    max_age_days: Number = Field(gt=0)
    factor: Number = Field(gt=0, le=1)


class WindowCap(Spec):
    """At most `points` from one rule per window of `days` (fixed windows, see below)."""

    days: Number = Field(gt=0)
    points: Number = Field(gt=0)


Measure = Literal["count", "sum", "max", "days_since_last"]


class EngagementRule(ValueRule):
    """One engagement rule, of one of four kinds (rules are cumulative: an activity
    matching two rules scores in both):

    - per activity (`activity: TYPE`, `points`): `where` filters on attributes (text:
      contains, or a condition); `max_count` counts only the most recent N; `max_points`
      caps the rule's total (its absolute value for a negative rule); `max_points_per`
      caps each fixed window of N days. Positive points decay.
    - inactivity (`inactive_days`, negative `points`): no engagement for that long.
    - a person field (`field:` with a condition + points, a table or bins): engagement a
      CRM computes itself (visit counts); no decay.
    - an aggregate (`measure` of `activity: TYPE or [TYPES]` over `within_days`, scored by
      min/max + points or by bins; `missing` is the points when there is no value).
    """

    id: RuleId
    activity: ActivityType | tuple[ActivityType, ...] | None = None
    inactive_days: Number | None = Field(default=None, gt=0)
    where: Where | None = None
    max_count: int | None = Field(default=None, ge=1, strict=True)
    max_points: Number | None = Field(default=None, gt=0)
    max_points_per: WindowCap | None = None
    measure: Measure | None = None
    attribute: Annotated[str, Field(min_length=1)] | None = None
    within_days: Number | None = Field(default=None, gt=0)
    description: str = ""

    @field_validator("activity", mode="before")
    @classmethod
    def _known_activity(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            return tuple(activity_type(v) for v in value)
        return None if value is None else activity_type(value)

    def kind(self) -> str:
        """"activity", "inactivity", "field" or "aggregate"."""
        if self.measure is not None:
            return "aggregate"
        if self.field is not None:
            return "field"
        return "inactivity" if self.inactive_days is not None else "activity"

    def activity_types(self) -> tuple[ActivityType, ...]:
        if self.activity is None:
            return ()
        return self.activity if isinstance(self.activity, tuple) else (self.activity,)

    @model_validator(mode="after")
    def _kind(self) -> EngagementRule:
        kinds = [k for k, v in (("activity", self.activity), ("inactive_days",
                                self.inactive_days), ("field", self.field)) if v is not None]
        if self.measure is not None:
            self._check_aggregate()
        elif len(kinds) != 1:
            raise ValueError("an engagement rule needs exactly one of `activity` (points per "
                             "activity), `inactive_days` (points for no engagement in that "
                             "many days), `field` (a person field such as a visit count) or "
                             f"`measure` (an aggregate); found {', '.join(kinds) or 'none'}. "
                             "Fix: keep one of them")
        elif self.field is not None:
            self._only("a person rule", ("where", "max_count", "max_points", "max_points_per",
                                         "attribute", "within_days"))
            self.check_rule("a person rule", self.field)
        else:
            self._check_activity()
        return self

    def _only(self, what: str, forbidden: tuple[str, ...]) -> None:
        extra = [k for k in forbidden if getattr(self, k) is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} do not apply to {what}. Fix: remove them")

    def _check_activity(self) -> None:
        what = "an inactivity rule" if self.inactive_days is not None else "an activity rule"
        self._only(what, ("table", "bins", "default", "attribute", "within_days"))
        if self.operators() or self.negate is not None:
            raise ValueError(f"{what} takes no condition of its own. Fix: filter activities "
                             "with `where: {attribute: ...}`, or use `measure` to score a "
                             "number")
        if self.missing is not None:
            raise ValueError(f"`missing` does not apply to {what}. Fix: remove it")
        if self.points is None:
            raise ValueError(f"{what} needs `points`. Fix: add e.g. `points: 5`")
        if isinstance(self.activity, tuple):
            raise ValueError("a list of activity types is for `measure` rules. Fix: one rule "
                             "per type, or add `measure: count`")
        if self.inactive_days is not None:
            self._only(what, ("where", "max_count", "max_points", "max_points_per"))
            if self.points >= 0:
                raise ValueError(f"an inactivity rule must give negative points, got "
                                 f"{self.points:g}. Fix: write e.g. `points: -10`")
        if self.max_count is not None and self.max_points_per is not None:
            raise ValueError("use `max_count` or `max_points_per`, not both (together, a "
                             "new activity could push an older one out of the count and "
                             "lower the score). Fix: keep one; `max_points` combines with "
                             "either")

    def _check_aggregate(self) -> None:
        what = f"a `measure: {self.measure}` rule"
        self._only(what, ("field", "inactive_days", "max_count", "max_points",
                          "max_points_per", "table", "default"))
        if self.activity is None:
            raise ValueError(f"{what} needs `activity`: the type(s) it measures, e.g. "
                             "`activity: page_view` or `[page_view, form_fill]`. Fix: add it")
        if self.measure in ("sum", "max") and self.attribute is None:
            raise ValueError(f"{what} needs `attribute`: the numeric activity attribute it "
                             "adds up or takes the largest of, e.g. `attribute: duration`. "
                             "Fix: add it")
        if self.measure in ("count", "days_since_last") and self.attribute is not None:
            raise ValueError(f"`attribute` does not apply to {what}. Fix: remove it")
        if isinstance(self.missing, bool):
            raise ValueError(f"in {what}, `missing` is the points for no value (no such "
                             "activity in the window). Fix: write a number, e.g. "
                             "`missing: -5`")
        if self.bins is not None:
            if self.operators() or self.points is not None:
                raise ValueError(f"{what} scores by `bins` or by `min`/`max` with `points`, "
                                 "not both. Fix: keep one")
            check_bins(self.bins)
            return
        if self.operators() != ["min/max"] or self.points is None or self.negate is not None:
            raise ValueError(f"{what} needs `bins`, or `min` and/or `max` with `points` "
                             "(e.g. `min: 3, points: 10`: at least 3). Fix: add one of them")


def check_decay(half_life_days: float | None,
                decay_steps: tuple[DecayStep, ...] | None) -> None:
    """One kind of decay, with steps that rise in age and never rise in worth."""
    if half_life_days is not None and decay_steps is not None:
        raise ValueError("give `half_life_days` or `decay_steps`, not both. Fix: keep "
                         "the one you mean")
    if decay_steps is not None:
        ages = [s.max_age_days for s in decay_steps]
        factors = [s.factor for s in decay_steps]
        if any(a >= b for a, b in itertools.pairwise(ages)):
            raise ValueError(f"decay_steps must have strictly rising max_age_days (got "
                             f"{ages}). Fix: list the steps from newest to oldest")
        if any(a < b for a, b in itertools.pairwise(factors)):
            raise ValueError(f"decay_steps factors must not rise with age (got "
                             f"{factors}): older activity cannot be worth more. Fix: "
                             "make each factor at most the one before")


class Band(Spec):
    band: Label
    min: Number

    @field_validator("band", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Engagement(Spec):
    half_life_days: Number | None = Field(default=None, gt=0)
    decay_steps: tuple[DecayStep, ...] | None = Field(default=None, min_length=1)
    lookback_days: Number = Field(default=180.0, gt=0)
    engaged_activities: EngagedActivities = Field(default=None, min_length=1)
    bands: tuple[Band, ...] | None = Field(default=None, min_length=1)
    rules: tuple[EngagementRule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Engagement:
        unique([r.id for r in self.rules], "engagement rule id")
        check_decay(self.half_life_days, self.decay_steps)
        if self.bands is not None:
            unique([b.band for b in self.bands], "engagement band")
            falling([b.min for b in self.bands], "engagement bands", "bands")
        return self

    def engaged(self) -> frozenset[ActivityType]:
        """What counts as engagement for inactivity and recycle rules: the list given, else
        every activity type that some rule scores positively."""
        if self.engaged_activities is not None:
            return frozenset(self.engaged_activities)
        return frozenset(kind for r in self.rules if _gives_points(r)
                         for kind in r.activity_types())


def _gives_points(rule: EngagementRule) -> bool:
    """Whether a rule on activities can give positive points (so its activities count as
    engagement by default)."""
    if rule.bins is not None:
        return any(b.points > 0 for b in rule.bins)
    return rule.points is not None and rule.points > 0
