"""`syncer model calibrate`: learn a readable integer-points model from a history.

The steps, each in its own module: read and split the history (history.py), decide what
each column is and its levels on the train part (columns.py), refuse leaky columns
(guard.py), fit points (points.py), write them as table/bins fit rules with their
evidence (modelfile.py), then pick grades and the MQL threshold from the train part as
the qualification core scores it, and judge the result on the test part through the
same core (backtest.py). The model that comes out is an ordinary model file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt

from syncer.qualify import Model, parse_model, qualify
from syncer.qualify.learn.activity_columns import activity_count_column
from syncer.qualify.learn.backtest import ModelBacktest, judge
from syncer.qualify.learn.columns import Feature, column_kind, make_feature, why_unusable
from syncer.qualify.learn.guard import Refusal, refused_columns
from syncer.qualify.learn.history import Column, History, HistoryError, Split, find_column
from syncer.qualify.learn.mapping import ColumnMap
from syncer.qualify.learn.modelfile import (
    LOWEST_GRADE_MIN,
    LearnedRule,
    fit_rule,
    grades,
    header_lines,
    model_data,
    model_text,
)
from syncer.qualify.learn.points import Fitted, fit_points
from syncer.qualify.learn.rows import STANDARD_FIELDS, HistoryRow, history_rows

#: Standard person fields the core reads as text (employees is the one number).
TEXT_STANDARD = frozenset(STANDARD_FIELDS) - {"employees"}
#: Fields that name a person: never learned from, even where they repeat (first names).
IDENTITY_FIELDS = frozenset({"first_name", "last_name", "email"})
#: The fewest train people a threshold must qualify for its precision to count.
MIN_MQLS = 20


class LeakageRefused(HistoryError):
    """Columns the leakage guard refuses; the message names each one and why."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = tuple(refusals)
        lines = "\n".join(f"  - {r.message()}" for r in self.refusals)
        super().__init__(f"the leakage guard refuses {len(self.refusals)} column(s):\n{lines}")


@dataclass(frozen=True, slots=True)
class Options:
    """What the admin asked for. `mql_rate` (share of people MQL) unless `precision`
    (the lowest score whose MQLs convert at least that often) is given."""

    exclude: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    mql_rate: float = 0.3
    precision: float | None = None
    base: Model | None = None
    name: str = "learned"
    mapping: ColumnMap = field(default_factory=ColumnMap)


@dataclass(frozen=True, slots=True)
class Calibration:
    """The learned model, its file text and what went into it."""

    model: Model
    text: str
    used: tuple[str, ...]
    excluded: dict[str, str]
    fitted: Fitted
    test: ModelBacktest
    rows_train: int
    rows_test: int
    mql_score: int


def _renamed(history: History, mapping: ColumnMap) -> dict[str, str]:
    return {find_column(history.columns, c).header: f for c, f in mapping.columns.items()}


def choose_features(history: History, split: Split, options: Options
                    ) -> tuple[list[Feature], dict[str, str]]:
    """The columns to learn from, as levels; and every other column with the reason."""
    excluded: dict[str, str] = {history.id_header: "the id (first column)",
                                history.outcome_header: "the outcome"}
    if history.time_header:
        excluded[history.time_header] = "the time column"
    if history.as_of_header:
        excluded[history.as_of_header] = "the instant each person is scored at"
    for name in options.exclude:
        excluded.setdefault(find_column(history.columns, name).header, "--exclude")
    for name in options.allow:
        find_column(history.columns, name)
    fields = _renamed(history, options.mapping)
    features: list[Feature] = []
    for column in history.columns:
        if column.header in excluded:
            continue
        cells = [column.cells[i] for i in split.train]
        named = Column(column.header, fields.get(column.header, column.field), column.cells)
        kind = column_kind(cells)
        if named.field in TEXT_STANDARD:
            kind = "text"           # the core reads title, country, ... as text only
        elif activity_count_column(named.field) is not None:
            kind = "number"         # a count: learned as bins of an aggregate
        reason = why_unusable(cells, kind)
        if reason is None and named.field in IDENTITY_FIELDS:
            reason = "who a person is by name is not evidence (and would not be fair)"
        if reason is None and named.field == "employees" and kind == "text":
            reason = "employees must be a number (the core reads it as one)"
        if reason:
            excluded[column.header] = reason
            continue
        feature = make_feature(named, kind, split.train)
        if len(set(feature.codes[list(split.train)].tolist())) < 2:
            excluded[column.header] = "one value for everyone (after grouping rare values)"
            continue
        features.append(feature)
    return features, excluded


def _train_scores(rows: Sequence[HistoryRow], model: Model
                  ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    decisions = [qualify(r.profile, model, r.as_of) for r in rows]
    fit = np.fromiter((d.fit_points for d in decisions), dtype=np.float64, count=len(rows))
    score = np.fromiter((d.score for d in decisions), dtype=np.int64, count=len(rows))
    return fit, score


def mql_threshold(scores: npt.NDArray[np.int64], outcomes: npt.NDArray[np.bool_],
                  options: Options) -> int:
    """The MQL score for the asked MQL share, or the lowest reaching the asked precision
    (among thresholds that qualify at least MIN_MQLS people: a precision measured on a
    handful of people is luck).

    The line is chosen on the score alone, not on the stage the core gives: a --base
    model's lifecycle (recycle after 90 days without engagement) holds back people of a
    history that has no activity timeline, and chasing the asked share through that
    would push the line down to people who do not convert. The test part's MQL share
    shows what the lifecycle does."""
    levels = np.unique(scores)
    share = np.array([(scores >= t).mean() for t in levels])
    if options.precision is None:
        gap = np.abs(share - options.mql_rate)
        return int(levels[np.flatnonzero(gap == gap.min())[-1]])
    enough = [t for t in levels if (scores >= t).sum() >= MIN_MQLS]
    for t in enough:
        if outcomes[scores >= t].mean() >= options.precision:
            return int(t)
    best = max(float(outcomes[scores >= t].mean()) for t in enough)
    raise HistoryError(f"--precision {options.precision:g}: no MQL threshold reaches it on "
                       f"the train part (the best is {best:.2f}). Fix: ask for a lower "
                       "precision, or use --mql-rate")


def calibrate(history: History, split: Split, options: Options, today: date
              ) -> Calibration:
    """Learn, check and judge a model; LeakageRefused or HistoryError when it cannot."""
    outcomes = np.asarray(history.outcomes, dtype=bool)
    if outcomes[list(split.train)].all() or not outcomes[list(split.train)].any():
        raise HistoryError("every person of the train part has the same outcome: there is "
                           "nothing to learn. Fix: use a longer history or another split")
    features, excluded = choose_features(history, split, options)
    refusals = refused_columns(features, split.train, outcomes, options.allow)
    if refusals:
        raise LeakageRefused(refusals)
    if not features:
        raise HistoryError("no column is left to learn from (see the excluded columns). "
                           "Fix: export more columns of what is known before the outcome")
    fitted = fit_points(features, split.train, outcomes)
    rules: list[LearnedRule] = []
    used: list[str] = []
    for feature, points in zip(features, fitted.points, strict=True):
        if any(points):
            rules.append(fit_rule(feature, points, split.train, outcomes, today.isoformat()))
            used.append(feature.column.header)
        else:
            excluded[feature.column.header] = "no signal (every value got 0 points)"
    return _settle(history, split, options, today, rules, fitted,
                   (tuple(used), excluded))


def _settle(history: History, split: Split, options: Options, today: date,
            rules: list[LearnedRule], fitted: Fitted,
            columns: tuple[tuple[str, ...], dict[str, str]]) -> Calibration:
    """Grades and the MQL line from the train part as the core scores it, then the
    verdict on the test part, also through the core."""
    outcomes = np.asarray(history.outcomes, dtype=bool)
    source = Path(history.source).name
    description = (f"Learned from {source}: {history.outcome_header} of "
                   f"{len(split.train):,} people ({split.description}).")
    draft = parse_model(model_data(options.name, description, rules,
                                   [{"grade": "D", "min": LOWEST_GRADE_MIN}], 0,
                                   options.base), "<calibrated model>")
    fit, scores = _train_scores(history_rows(history, split.train, options.mapping), draft)
    threshold = mql_threshold(scores, outcomes[list(split.train)], options)
    bands = grades(fit)
    model = parse_model(model_data(options.name, description, rules, bands, threshold,
                                   options.base), "<calibrated model>")
    test_rows = history_rows(history, split.test, options.mapping)
    tested = outcomes[list(split.test)]
    if tested.all() or not tested.any():
        raise HistoryError(f"every one of the {len(split.test):,} people of the test part "
                           "has the same outcome, so the model cannot be judged. Fix: a "
                           "larger --test-fraction, an earlier --split-at, or a longer "
                           "history")
    test = judge(test_rows, model, tested, history.dated)
    info: dict[str, str | int | float] = {
        "source": source, "outcome": history.outcome_header, "rows_train": len(split.train),
        "rows_test": len(split.test), "split": split.description,
        "auc_test": round(test.auc, 4), "auc_test_low": round(test.interval[0], 4),
        "auc_test_high": round(test.interval[1], 4), "cv_auc_train": round(fitted.cv_auc, 4),
        "regularisation_c": fitted.c, "learned": today.isoformat()}
    data = model_data(options.name, description, rules, bands, threshold, options.base, info)
    text = model_text(data, header_lines(source, today, len(split.train), len(split.test),
                                         test.auc))
    return Calibration(parse_model(data, "<calibrated model>"), text, columns[0], columns[1],
                       fitted, test, len(split.train), len(split.test), threshold)
