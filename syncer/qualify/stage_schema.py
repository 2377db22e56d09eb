"""The sections of the model file that move a person through stages: `qualification` (how
a person becomes MQL and SQL) and `lifecycle` (recycle and disqualify rules).

Like the scoring sections (syncer/qualify/schema.py), each class says what is wrong in the
admin's terms with a "Fix:" and forbids unknown keys.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from syncer.domain.types import ActivityType, Stage
from syncer.qualify.conditions import (
    Number,
    PersonCondition,
    Spec,
)
from syncer.qualify.schema import (
    DEFAULT_HAND_RAISE,
    RuleId,
    Where,
    activity_type,
    activity_types,
    unique,
)

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
            self.check_condition("a disqualify rule", self.field)
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
