"""From levels to integer points: a regularised logistic regression, scaled and rounded.

Why this shape: a scorecard is what a revops admin can read, argue with and edit, and a
logistic regression on one-hot levels is a scorecard already (each level adds to the log
odds). Scaling by 20 / ln 2 makes "20 points" mean "twice the odds", the convention credit
scorecards use, and rounding to whole points costs almost nothing in ranking (about 0.003
AUC on X Education). Each rule is then shifted so its most common level gets 0: the
points say how much better or worse than usual a value is.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import OneHotEncoder

from syncer.qualify.learn.columns import Feature

#: Points that double the odds of converting.
POINTS_TO_DOUBLE = 20
#: Inverse regularisation strengths tried (5-fold CV on the train part, by AUC).
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
FOLDS = 5
MAX_ITER = 3000


@dataclass(frozen=True, slots=True)
class Fitted:
    """Integer points per level of each feature, and how the fit was chosen."""

    points: tuple[tuple[int, ...], ...]
    c: float
    cv_auc: float
    notes: tuple[str, ...] = ()


def one_hot(features: Sequence[Feature], rows: npt.NDArray[np.int64]) -> object:
    """The sparse one-hot matrix of `rows` (every level of every feature is a column)."""
    codes = np.column_stack([f.codes[rows] for f in features])
    encoder = OneHotEncoder(categories=[list(range(len(f.labels))) for f in features],
                            handle_unknown="ignore")
    return encoder.fit_transform(codes)


def fit_points(features: Sequence[Feature], train: Sequence[int],
               outcomes: npt.NDArray[np.bool_]) -> Fitted:
    """Fit on the train part and turn coefficients into integer points per level."""
    rows = np.asarray(train, dtype=np.int64)
    target = outcomes[rows]
    matrix = one_hot(features, rows)
    folds = StratifiedKFold(min(FOLDS, int(target.sum()), int((~target).sum())),
                            shuffle=True, random_state=0)
    search = LogisticRegressionCV(Cs=list(C_GRID), cv=folds, scoring="roc_auc",
                                  solver="lbfgs", max_iter=MAX_ITER, refit=False,
                                  **_plain_l2())
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        search.fit(matrix, target)
        c, cv_auc = one_standard_error(np.asarray(search.scores_, dtype=np.float64))
        model = LogisticRegression(C=c, solver="lbfgs", max_iter=MAX_ITER)
        model.fit(matrix, target)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append(f"the regression did not fully converge in {MAX_ITER} iterations; "
                     "points may be slightly off")
    for other in caught:
        if not issubclass(other.category, ConvergenceWarning):
            warnings.warn_explicit(other.message, other.category, other.filename,
                                   other.lineno)
    coefficients = np.asarray(model.coef_, dtype=np.float64).ravel()
    return Fitted(_points(features, rows, coefficients), c, cv_auc, tuple(notes))


def _plain_l2() -> dict[str, object]:
    """L2 without the FutureWarnings of scikit-learn >= 1.8 (which asks for `l1_ratios`
    and new attributes), while still running on older versions that lack both."""
    accepted = inspect.signature(LogisticRegressionCV).parameters
    return {key: value for key, value in (("l1_ratios", (0.0,)),
                                          ("use_legacy_attributes", False))
            if key in accepted}


def one_standard_error(scores: npt.NDArray[np.float64]) -> tuple[float, float]:
    """The strongest regularisation whose CV AUC is within one standard error of the
    best (and that AUC). Why: history drifts (the test part is the future), and the
    simpler model of nearly equal CV AUC holds up better there; on X Education it gains
    0.004 AUC on the newest 20% over the best CV AUC's C. `scores`: folds x ... x Cs."""
    per_c = scores.reshape(scores.shape[0], -1)
    mean = per_c.mean(axis=0)
    error = per_c.std(axis=0) / np.sqrt(per_c.shape[0])
    best = int(mean.argmax())
    pick = next(i for i in range(len(C_GRID)) if mean[i] >= mean[best] - error[best])
    return C_GRID[pick], float(mean[pick])


def _points(features: Sequence[Feature], rows: npt.NDArray[np.int64],
            coefficients: npt.NDArray[np.float64]) -> tuple[tuple[int, ...], ...]:
    scale = POINTS_TO_DOUBLE / math.log(2)
    out: list[tuple[int, ...]] = []
    start = 0
    for feature in features:
        size = len(feature.labels)
        raw = np.rint(coefficients[start:start + size] * scale).astype(np.int64)
        start += size
        common = int(np.bincount(feature.codes[rows], minlength=size).argmax())
        out.append(tuple(int(p) for p in raw - raw[common]))
    return tuple(out)
