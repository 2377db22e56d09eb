"""The leakage guard: refuse columns that know the outcome instead of predicting it.

A CRM export mixes what was known before sales touched a lead (source, pages, form
answers) with what sales wrote afterwards (call notes, a quality rating, tags such as
"Closed by ..."). A model that learns from the second kind looks brilliant on history
and is useless on a new lead, where those fields are still empty. Nothing in a column's
name says which kind it is, but two traces in the data do, measured on the train part:

(a) **near-perfect separator**: the column alone ranks people with an AUC of at least
    `SEPARATOR_AUC` (0.90). Text columns are scored by each level's conversion rate
    learned out of fold (5 folds, so a level cannot vouch for itself); number columns by
    the raw value, in whichever direction ranks better. No honest single column of a
    lead form gets there; on X Education, Tags does (0.92) while the best honest column,
    Last Activity, reaches 0.74.
(b) **filled mostly for positives**: the column is present for at least `FILLED_RATIO`
    (1.75) times the share of converted people than of the others, and for fewer than
    `FILLED_MAX_NEGATIVE` (60%) of the others: a field sales fills in when a deal moves.
    On X Education: Lead Quality (70% vs 36%, x1.96) and Lead Profile (42% vs 17%, x2.4)
    are named; the honest occupation and "what matters most" answers (x1.46, filled for
    61% of the others) pass.

Some leaks leave no such trace (X Education's Last Notable Activity and Asymmetrique*
columns look like honest columns in the data; its README names them): exclude those by
name. `--allow` lets a named column in when it is known before the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from syncer.qualify.learn.columns import Feature
from syncer.qualify.learn.history import as_number

SEPARATOR_AUC = 0.90
FILLED_RATIO = 1.75
FILLED_MAX_NEGATIVE = 0.60
FOLDS = 5
#: Pseudo-people at the overall rate added to each level: rare levels stay near it.
SMOOTHING = 10.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A column the guard refuses, and why, in words an admin can check."""

    header: str
    reasons: tuple[str, ...]

    def message(self) -> str:
        return (f"{self.header!r}: {'; '.join(self.reasons)}. Fix: --exclude "
                f"{self.header!r}, or --allow {self.header!r} if it is known before the "
                "outcome")


def out_of_fold_rate(codes: npt.NDArray[np.int64], outcomes: npt.NDArray[np.bool_]
                     ) -> npt.NDArray[np.float64]:
    """Each person's level conversion rate, learned from the other folds only."""
    size = int(codes.max()) + 1
    prior = float(outcomes.mean())
    rates = np.full(len(codes), prior)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    for fit, held in folds.split(codes, outcomes):
        people = np.bincount(codes[fit], minlength=size)
        won = np.bincount(codes[fit], weights=outcomes[fit].astype(np.float64),
                          minlength=size)
        rates[held] = ((won + prior * SMOOTHING) / (people + SMOOTHING))[codes[held]]
    return rates


def separation(feature: Feature, train: npt.NDArray[np.int64],
               outcomes: npt.NDArray[np.bool_]) -> float:
    """How well the column alone ranks the train part (AUC, 0.5 = not at all)."""
    if feature.kind == "text":
        codes = feature.codes[train]
        return float(roc_auc_score(outcomes, out_of_fold_rate(codes, outcomes)))
    parsed = [as_number(c) if c is not None else None for c in feature.column.cells]
    raw = np.array([np.nan if v is None else v for v in parsed], dtype=np.float64)[train]
    floor = np.nanmin(raw) - 1 if np.isfinite(raw).any() else 0.0
    auc = float(roc_auc_score(outcomes, np.nan_to_num(raw, nan=floor)))
    return max(auc, 1 - auc)


def leak_reasons(feature: Feature, train: npt.NDArray[np.int64],
                 outcomes: npt.NDArray[np.bool_]) -> tuple[str, ...]:
    """Why the column looks leaky, one text per trace found (empty: it looks honest)."""
    reasons: list[str] = []
    auc = separation(feature, train, outcomes)
    if auc >= SEPARATOR_AUC:
        reasons.append(f"separates the outcome almost perfectly on its own (AUC {auc:.2f} "
                       f">= {SEPARATOR_AUC:.2f}): probably written after the outcome")
    present = np.array([feature.column.cells[i] is not None for i in train])
    positive = float(present[outcomes].mean()) if outcomes.any() else 0.0
    negative = float(present[~outcomes].mean()) if (~outcomes).any() else 0.0
    if positive >= FILLED_RATIO * negative and negative < FILLED_MAX_NEGATIVE:
        reasons.append(f"filled mostly for converted people ({positive:.0%} of them vs "
                       f"{negative:.0%} of the others): probably filled in by sales after "
                       "contact")
    return tuple(reasons)


def refused_columns(features: Sequence[Feature], train: Sequence[int],
                    outcomes: npt.NDArray[np.bool_], allowed: Sequence[str] = ()
                    ) -> list[Refusal]:
    """The columns to refuse, in file order; `allowed` (headers or field names) pass."""
    index = np.asarray(train, dtype=np.int64)
    train_outcomes = outcomes[index]
    if train_outcomes.all() or not train_outcomes.any():
        return []
    refusals: list[Refusal] = []
    for feature in features:
        if feature.column.header in allowed or feature.field in allowed:
            continue
        reasons = leak_reasons(feature, index, train_outcomes)
        if reasons:
            refusals.append(Refusal(feature.column.header, reasons))
    return refusals
