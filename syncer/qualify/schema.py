"""The sections of the model file an admin writes: fit, engagement, qualification, lifecycle.

Each class validates one section and says what is wrong in the admin's terms with a "Fix:".
Checks that need two sections at once (a matrix naming fit grades and engagement bands)
live on `Model` in model.py. Every section forbids unknown keys, so a model written for a
newer syncer fails loudly on an older one instead of being half applied.
"""

from __future__ import annotations

import difflib
import itertools
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from syncer.domain import ActivityType, Stage

PERSON_FIELDS: tuple[str, ...] = (
    "title", "company", "industry", "employees", "country", "email", "first_name", "last_name",
)
NUMERIC_FIELDS: frozenset[str] = frozenset({"employees"})  # plan.py assumes this set
ACTIVITY_TYPES: tuple[str, ...] = tuple(t.value for t in ActivityType)
DEFAULT_HAND_RAISE: tuple[ActivityType, ...] = (
    ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES, ActivityType.PRICING_REQUEST,
)

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)]
Label = Annotated[str, Field(min_length=1, max_length=8)]
PersonField = Literal[
    "title", "company", "industry", "employees", "country", "email", "first_name", "last_name"
]
Where = dict[str, Annotated[str, Field(min_length=1)]]


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


def unique(values: list[str], what: str) -> None:
    seen = sorted({v for v in values if values.count(v) > 1})
    if seen:
        raise ValueError(f"duplicate {what}: {', '.join(seen)}. Fix: make each one unique")


def falling(mins: list[float], what: str, label: str) -> None:
    if any(a <= b for a, b in itertools.pairwise(mins)):
        raise ValueError(f"{what} must be listed from best to worst with strictly falling "
                         f"`min` (got {mins}). Fix: reorder the {label}; a value below the "
                         f"last one's min still gets the last {label[:-1]}")


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- person conditions


class PersonCondition(Spec):
    """One condition on a person attribute: exactly one operator.

    Text comparisons ignore case and surrounding spaces; `regex` is searched (not
    anchored) ignoring case; `min`/`max` are inclusive; `email_domain_in` also matches
    subdomains. A condition on a missing value never holds, except `missing: true`.
    """

    field: PersonField | None = None
    equals: str | int | None = None
    in_: tuple[str | int, ...] | None = Field(default=None, alias="in", min_length=1)
    contains: tuple[str, ...] | None = Field(default=None, min_length=1)
    regex: str | None = None
    at_least: int | None = Field(default=None, alias="min", strict=True)
    at_most: int | None = Field(default=None, alias="max", strict=True)
    email_domain_in: tuple[str, ...] | None = Field(default=None, min_length=1)
    missing: bool | None = Field(default=None, strict=True)

    @field_validator("equals", mode="before")
    @classmethod
    def _scalar(cls, value: object) -> object:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise ValueError(f"must be text or a whole number, got {value!r}. Fix: write "
                             "one value; for several use `in: [a, b]`")
        return value

    @field_validator("in_", mode="before")
    @classmethod
    def _scalars(cls, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                cls._scalar(item)
        return value

    @field_validator("contains", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and any(not isinstance(i, str) or not i.strip()
                                           for i in items):
            raise ValueError("every `contains` entry must be non-empty text. Fix: quote "
                             "numbers and remove empty entries")
        return items

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}. Fix: check brackets and "
                                 "escape special characters such as '.' as '\\.'") from None
        return value

    def operators(self) -> list[str]:
        return [name for name, value in (
            ("equals", self.equals), ("in", self.in_), ("contains", self.contains),
            ("regex", self.regex), ("min/max", self.at_least if self.at_least is not None
                                    else self.at_most),
            ("email_domain_in", self.email_domain_in), ("missing", self.missing),
        ) if value is not None]

    def check_condition(self, what: str) -> None:
        """Exactly one operator, and one that fits the field's type."""
        present = self.operators()
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(f"{what} needs exactly one condition, found: {found}. Fix: "
                             "use one of equals, in, contains, regex, min/max, "
                             "email_domain_in, missing (split it into several rules)")
        field = self.field or ""
        numeric = field in NUMERIC_FIELDS
        values = [self.equals] if self.equals is not None else list(self.in_ or ())
        if numeric and present[0] in ("contains", "regex", "email_domain_in"):
            raise ValueError(f"`{present[0]}` does not apply to the number field "
                             f"'{field}'. Fix: use min/max, equals, in or missing")
        if numeric and any(not isinstance(v, int) for v in values):
            raise ValueError(f"'{field}' is a number. Fix: compare with whole numbers")
        if not numeric and any(not isinstance(v, str) for v in values):
            raise ValueError(f"'{field}' is text. Fix: quote the values")
        if present[0] == "min/max" and not numeric:
            raise ValueError(f"min/max apply only to employees, not '{field}'. Fix: "
                             "use equals, in, contains or regex")
        if present[0] == "email_domain_in" and field != "email":
            raise ValueError("email_domain_in applies only to field 'email'. Fix: set "
                             "`field: email`")
        if (self.at_least is not None and self.at_most is not None
                and self.at_least > self.at_most):
            raise ValueError(f"min {self.at_least} is above max {self.at_most}. Fix: swap them")


# ---------------------------------------------------------------- fit


class FitRule(PersonCondition):
    """Points for who the person is. `group` makes a ladder: first match in a group wins."""

    id: RuleId
    field: PersonField  # required here (optional in a disqualify rule)
    points: Number
    group: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_condition(self) -> FitRule:
        self.check_condition("a fit rule")
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


class EngagementRule(Spec):
    """Points per activity of one type (`activity`), or for long inactivity
    (`inactive_days`). Rules are cumulative: an activity matching two rules scores in both.

    `where` requires each attribute to contain the text (ignoring case). `max_count`
    counts only the most recent N; `max_points` caps the rule's total (its absolute value
    for a negative rule); `max_points_per` caps each fixed window of N days.
    """

    id: RuleId
    activity: ActivityType | None = None
    inactive_days: Number | None = Field(default=None, gt=0)
    where: Where | None = None
    points: Number
    max_count: int | None = Field(default=None, ge=1, strict=True)
    max_points: Number | None = Field(default=None, gt=0)
    max_points_per: WindowCap | None = None
    description: str = ""

    @field_validator("activity", mode="before")
    @classmethod
    def _known_activity(cls, value: object) -> ActivityType | None:
        return None if value is None else activity_type(value)

    @model_validator(mode="after")
    def _kind(self) -> EngagementRule:
        if (self.activity is None) == (self.inactive_days is None):
            raise ValueError("an engagement rule needs exactly one of `activity` (points per "
                             "activity) or `inactive_days` (points for no engagement in that "
                             "many days). Fix: keep one of them")
        if self.inactive_days is not None:
            extra = [k for k, v in (("where", self.where), ("max_count", self.max_count),
                                    ("max_points", self.max_points),
                                    ("max_points_per", self.max_points_per)) if v is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} do not apply to an inactivity rule. "
                                 "Fix: remove them")
            if self.points >= 0:
                raise ValueError(f"an inactivity rule must give negative points, got "
                                 f"{self.points:g}. Fix: write e.g. `points: -10`")
        if self.max_count is not None and self.max_points_per is not None:
            raise ValueError("use `max_count` or `max_points_per`, not both (together, a "
                             "new activity could push an older one out of the count and "
                             "lower the score). Fix: keep one; `max_points` combines with "
                             "either")
        return self


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
    engaged_activities: tuple[ActivityType, ...] | None = Field(default=None, min_length=1)
    bands: tuple[Band, ...] | None = Field(default=None, min_length=1)
    rules: tuple[EngagementRule, ...] = ()

    @field_validator("engaged_activities", mode="before")
    @classmethod
    def _types(cls, value: object) -> object:
        return activity_types(value)

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
        return frozenset(r.activity for r in self.rules
                         if r.activity is not None and r.points > 0)


# ---------------------------------------------------------------- qualification


class Qualification(Spec):
    """How a person becomes MQL: on the total (`mode: total`: score, and optionally fit and
    engagement, reach thresholds) or on a fit grade x engagement band matrix (`mode:
    matrix`: the person's cell, e.g. "A2", is listed). A hand-raise within
    `hand_raise_days` (default: the engagement lookback) makes the person SQL.

    `hysteresis` (points, default 0: off) is the band that keeps a score wobbling around
    the threshold from cycling MQL -> RECYCLED -> MQL: someone at RECYCLED (they were
    qualified, then a recycle rule or a person took it back) qualifies again only with
    the band to spare: score >= mql_score + band and engagement >= min_engagement + band
    (min_fit is unchanged: who a person is does not wobble); in matrix mode, the
    engagement band is read from engagement - band. See lifecycle.py for why the band
    sits on that edge."""

    mode: Literal["total", "matrix"] = "total"
    mql_score: Number | None = None
    min_fit: Number | None = None
    min_engagement: Number | None = None
    matrix: tuple[str, ...] | None = Field(default=None, min_length=1)
    hand_raise: tuple[ActivityType, ...] = DEFAULT_HAND_RAISE
    hand_raise_days: Number | None = Field(default=None, gt=0)
    hysteresis: Number = Field(default=0.0, ge=0)

    @field_validator("hand_raise", mode="before")
    @classmethod
    def _types(cls, value: object) -> object:
        return activity_types(value)

    @field_validator("matrix", mode="before")
    @classmethod
    def _cells(cls, value: object) -> object:
        if isinstance(value, list):
            return [str(v).strip() if isinstance(v, (str, int)) else v for v in value]
        return value

    @model_validator(mode="after")
    def _mode(self) -> Qualification:
        if self.mode == "total":
            if self.mql_score is None:
                raise ValueError("`mql_score` is required with `mode: total` (the default). "
                                 "Fix: add `mql_score: 30` under qualification, or set "
                                 "`mode: matrix` and list the qualifying cells in `matrix`")
            if self.matrix is not None:
                raise ValueError("`matrix` is only used with `mode: matrix`. Fix: add "
                                 "`mode: matrix` (and remove mql_score), or remove `matrix`")
        else:
            unused = [k for k, v in (("mql_score", self.mql_score), ("min_fit", self.min_fit),
                                     ("min_engagement", self.min_engagement)) if v is not None]
            if unused:
                raise ValueError(f"{', '.join(unused)} not used with `mode: matrix`. Fix: "
                                 "remove them (the matrix decides), or use `mode: total`")
            if self.matrix is None:
                raise ValueError("`mode: matrix` needs `matrix`: the cells that qualify, "
                                 "fit grade then engagement band, e.g. [A1, A2, B1]. Fix: "
                                 "add it")
        return self


# ---------------------------------------------------------------- lifecycle


RecycleFrom = Literal["lead", "recycled", "mql"]
RecycleTo = Literal["subscriber", "lead", "recycled"]


class RecycleRule(Spec):
    """People at one of the `from` stages with no engagement for `inactive_days` move back
    to `to`. The only way a stage on the ladder moves backwards."""

    id: RuleId
    from_: tuple[RecycleFrom, ...] = Field(alias="from", min_length=1)
    inactive_days: Number = Field(gt=0)
    to: RecycleTo
    description: str = ""

    @model_validator(mode="after")
    def _backwards(self) -> RecycleRule:
        target = Stage(self.to)
        later = [s for s in self.from_ if Stage(s).rank <= target.rank]
        if later:
            raise ValueError(f"a recycle rule moves people back, but `to: {self.to}` is not "
                             f"earlier in the funnel than {', '.join(later)}. Fix: recycle "
                             "mql to recycled or lead, recycled to lead, lead to subscriber")
        return self


class DisqualifyRule(PersonCondition):
    """A person condition (like a fit rule, without points) or an activity (any time,
    optionally `where`) that takes a person out of the funnel: stage disqualified."""

    id: RuleId
    activity: ActivityType | None = None
    where: Where | None = None
    description: str = ""

    @field_validator("activity", mode="before")
    @classmethod
    def _known_activity(cls, value: object) -> ActivityType | None:
        return None if value is None else activity_type(value)

    @model_validator(mode="after")
    def _one_kind(self) -> DisqualifyRule:
        if (self.field is None) == (self.activity is None):
            raise ValueError("a disqualify rule needs exactly one of `field` (with one "
                             "condition, as in fit rules) or `activity`. Fix: keep one")
        if self.activity is not None:
            if self.operators():
                raise ValueError("an activity disqualify rule takes no person condition. "
                                 "Fix: use `where` for activity attributes, or split it")
        else:
            if self.where is not None:
                raise ValueError("`where` applies only with `activity`. Fix: remove it")
            self.check_condition("a disqualify rule")
        return self


class Lifecycle(Spec):
    """Stages beyond scoring: subscriber, recycling, disqualification."""

    subscriber_activities: tuple[ActivityType, ...] = ()
    recycle: tuple[RecycleRule, ...] = ()
    disqualify: tuple[DisqualifyRule, ...] = ()
    keep_disqualified: bool = Field(default=True, strict=True)

    @field_validator("subscriber_activities", mode="before")
    @classmethod
    def _types(cls, value: object) -> object:
        return activity_types(value)

    @model_validator(mode="after")
    def _unique_ids(self) -> Lifecycle:
        unique([r.id for r in self.recycle], "recycle rule id")
        unique([r.id for r in self.disqualify], "disqualify rule id")
        return self
