"""Judge a model on people whose outcome is known: the test part of a history.

Every person is scored by `qualify(profile, model, as_of)`, the very function a sync runs,
so the figures describe the model as it will behave in the CRM (a learned model is never
judged by the regression it came from). Two models are reported side by side: the one
under test and one to compare with (the shipped model, or the published one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, TypedDict

import numpy as np
import numpy.typing as npt

from syncer.domain.types import Profile, Stage
from syncer.qualify import Model, qualify
from syncer.qualify.learn.history import HistoryError
from syncer.qualify.learn.metrics import (
    Band,
    auc,
    auc_interval,
    histogram,
    lift_curve,
    score_bands,
)


class OutcomeRow(Protocol):
    """A person with a known outcome, as a history file (rows.HistoryRow) or the state
    store (syncer/run/outcome_history.py) gives them: `profile` as known at `as_of`."""

    @property
    def id(self) -> str: ...
    @property
    def profile(self) -> Profile: ...
    @property
    def outcome(self) -> bool: ...
    @property
    def as_of(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class StageLine:
    stage: str
    people: int
    converted: int
    rate: float


@dataclass(frozen=True, slots=True)
class Week:
    """People scored in one ISO week (Monday), the MQLs among them and how many won."""

    week: date
    people: int
    mqls: int
    mql_won: int


@dataclass(frozen=True, slots=True)
class ModelBacktest:
    """One model's figures on the test part. `scores` and `stages` follow the rows."""

    name: str
    version: str
    auc: float
    interval: tuple[float, float]
    bands: tuple[Band, ...]
    stages: tuple[StageLine, ...]
    mql_share: float
    mql_precision: float | None
    mql_recall: float | None
    weeks: tuple[Week, ...]
    scores: npt.NDArray[np.int64] = field(repr=False)
    stage_of: tuple[str, ...] = field(repr=False)

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "auc": round(self.auc, 4),
                "auc_95": [round(v, 4) for v in self.interval],
                "mql_share": round(self.mql_share, 4),
                "mql_conversion": _round(self.mql_precision),
                "mql_recall": _round(self.mql_recall),
                "bands": [vars_of(b) for b in self.bands],
                "stages": [vars_of(s) for s in self.stages],
                "weeks": [{**vars_of(w), "week": w.week.isoformat()} for w in self.weeks]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def vars_of(item: object) -> dict[str, object]:
    return {name: (round(v, 4) if isinstance(v, float) else v)
            for name in item.__slots__  # type: ignore[attr-defined]
            for v in (getattr(item, name),)}


@dataclass(frozen=True, slots=True)
class Report:
    """A backtest: the test rows, the model under test and the one it is compared with."""

    ids: tuple[str, ...]
    outcomes: npt.NDArray[np.bool_] = field(repr=False)
    dated: bool
    model: ModelBacktest
    against: ModelBacktest | None

    @property
    def people(self) -> int:
        return len(self.ids)

    @property
    def converted(self) -> int:
        return int(self.outcomes.sum())

    def summary(self) -> dict[str, object]:
        return {"people": self.people, "converted": self.converted,
                "model": self.model.summary(),
                "against": self.against.summary() if self.against else None}


QUALIFIED_RANK = Stage.MQL.rank


def score_rows(rows: Sequence[OutcomeRow], model: Model
               ) -> tuple[npt.NDArray[np.int64], tuple[str, ...]]:
    """Each row's integer score and stage, decided by the qualification core."""
    decisions = [qualify(row.profile, model, row.as_of) for row in rows]
    scores = np.fromiter((d.score for d in decisions), dtype=np.int64, count=len(decisions))
    return scores, tuple(d.stage.value for d in decisions)


def judge(rows: Sequence[OutcomeRow], model: Model, outcomes: npt.NDArray[np.bool_],
          dated: bool) -> ModelBacktest:
    """One model's figures on `rows` (whose outcomes are `outcomes`)."""
    scores, stages = score_rows(rows, model)
    qualified = np.array([Stage(s).rank >= QUALIFIED_RANK for s in stages], dtype=bool)
    mqls = int(qualified.sum())
    won_mqls = int((qualified & outcomes).sum())
    total_won = int(outcomes.sum())
    return ModelBacktest(
        name=model.name, version=model.version, auc=auc(scores, outcomes),
        interval=auc_interval(scores, outcomes), bands=tuple(score_bands(scores, outcomes)),
        stages=_stage_lines(stages, outcomes), mql_share=mqls / len(rows),
        mql_precision=won_mqls / mqls if mqls else None,
        mql_recall=won_mqls / total_won if total_won else None,
        weeks=_weeks(rows, qualified, outcomes) if dated else (),
        scores=scores, stage_of=stages)


def _stage_lines(stages: Sequence[str], outcomes: npt.NDArray[np.bool_]
                 ) -> tuple[StageLine, ...]:
    people = Counter(stages)
    won = Counter(s for s, o in zip(stages, outcomes.tolist(), strict=True) if o)
    order = sorted(people, key=lambda s: -Stage(s).rank)
    return tuple(StageLine(s, people[s], won[s], won[s] / people[s]) for s in order)


def _weeks(rows: Sequence[OutcomeRow], qualified: npt.NDArray[np.bool_],
           outcomes: npt.NDArray[np.bool_]) -> tuple[Week, ...]:
    people: Counter[date] = Counter()
    mqls: Counter[date] = Counter()
    won: Counter[date] = Counter()
    for row, is_mql, outcome in zip(rows, qualified.tolist(), outcomes.tolist(), strict=True):
        day = row.as_of.date()
        monday = day - timedelta(days=day.weekday())
        people[monday] += 1
        mqls[monday] += is_mql
        won[monday] += is_mql and outcome
    return tuple(Week(w, people[w], mqls[w], won[w]) for w in sorted(people))


def backtest_profiles(rows: Sequence[OutcomeRow], model: Model,
                      against: Model | None = None, dated: bool | None = None) -> Report:
    """Backtest `model` (and `against`) on rows with known outcomes, from a history file
    or from the state store. `dated` (default: the rows' instants differ) enables the
    per-week figures. HistoryError when the rows hold only one outcome."""
    outcomes = np.fromiter((r.outcome for r in rows), dtype=bool, count=len(rows))
    if outcomes.all() or not outcomes.any():
        raise HistoryError(f"the {len(rows):,} people to judge on all have the same outcome: "
                         "a ranking cannot be judged. Fix: test on a longer period")
    if dated is None:
        dated = len({r.as_of for r in rows}) > 1
    first = judge(rows, model, outcomes, dated)
    second = judge(rows, against, outcomes, dated) if against is not None else None
    return Report(tuple(r.id for r in rows), outcomes, dated, first, second)


class Curves(TypedDict):
    """One model's lift curve and score histogram (metrics.py's shapes)."""

    lift: list[tuple[float, float]]
    histogram: tuple[list[float], list[int], list[int]]


def curves(result: ModelBacktest, outcomes: npt.NDArray[np.bool_]) -> Curves:
    """Lift curve and score histogram of one model (for the HTML report)."""
    return {"lift": lift_curve(result.scores, outcomes),
            "histogram": histogram(result.scores, outcomes)}
