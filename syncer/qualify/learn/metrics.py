"""How well a score ranks people who converted above those who did not.

AUC is the one number: the chance that a random converted person scores above a random
other one (ties count half). It says nothing about where the MQL line sits, so the
backtest also reports conversion per score band and per stage. The interval is a
bootstrap over people (1,000 resamples, seeded: the same data always gives the same
interval), computed from score counts so 100,000 people take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

RESAMPLES = 1000
SEED = 14
CHUNK = 50

Scores = npt.NDArray[np.int64]
Outcomes = npt.NDArray[np.bool_]


def auc(scores: Scores, outcomes: Outcomes) -> float:
    """ROC AUC (sklearn); ValueError when only one outcome is present."""
    if outcomes.all() or not outcomes.any():
        raise ValueError("AUC needs both converted and not converted people")
    return float(roc_auc_score(outcomes, scores))


def _auc_of_counts(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]
                   ) -> npt.NDArray[np.float64]:
    """AUC per row of (resample x distinct score) counts of positives and negatives."""
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, wins / np.where(total > 0, total, 1), np.nan)


def auc_interval(scores: Scores, outcomes: Outcomes, resamples: int = RESAMPLES,
                 seed: int = SEED) -> tuple[float, float]:
    """The bootstrap 95% interval of the AUC (percentiles 2.5 and 97.5)."""
    levels, index = np.unique(scores, return_inverse=True)
    width = len(levels)
    rng = np.random.default_rng(seed)
    n = len(scores)
    found: list[npt.NDArray[np.float64]] = []
    positive = outcomes.astype(np.float64)
    for start in range(0, resamples, CHUNK):
        count = min(CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(count, n))
        flat = (np.arange(count)[:, None] * width + index[draws]).ravel()
        pos = np.bincount(flat, weights=positive[draws].ravel(), minlength=count * width)
        every = np.bincount(flat, minlength=count * width).astype(np.float64)
        wins = np.asarray(pos, dtype=np.float64).reshape(count, width)
        found.append(_auc_of_counts(wins, every.reshape(count, width) - wins))
    values = np.concatenate(found)
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True, slots=True)
class Band:
    """People whose scores fall in one band (best band first), and how many converted."""

    band: int
    low: int
    high: int
    people: int
    converted: int
    rate: float
    lift: float


def score_bands(scores: Scores, outcomes: Outcomes, count: int = 10) -> list[Band]:
    """Deciles of the score, best first, ties kept together (so there may be fewer)."""
    n = len(scores)
    base = float(outcomes.mean()) if n else 0.0
    levels, index = np.unique(scores, return_inverse=True)
    people = np.bincount(index, minlength=len(levels))
    won = np.bincount(index, weights=outcomes.astype(np.float64), minlength=len(levels))
    above = n - np.cumsum(people)          # people scoring higher than each level
    decile = np.minimum(above * count // max(n, 1), count - 1)
    bands: list[Band] = []
    for number, which in enumerate(sorted(set(decile.tolist())), start=1):
        mask = decile == which
        p, w = int(people[mask].sum()), round(float(won[mask].sum()))
        rate = w / p if p else 0.0
        bands.append(Band(number, int(levels[mask].min()), int(levels[mask].max()), p, w,
                          rate, rate / base if base else 0.0))
    return bands


def lift_curve(scores: Scores, outcomes: Outcomes, points: int = 20
               ) -> list[tuple[float, float]]:
    """(share of people contacted, best scores first; share of conversions they hold).

    People with equal scores are taken as a group in random order, so the curve runs
    straight through a tie (a model that scores everyone alike draws the diagonal)."""
    levels, index = np.unique(-scores, return_inverse=True)
    people = np.cumsum(np.bincount(index, minlength=len(levels)))
    found = np.cumsum(np.bincount(index, weights=outcomes.astype(np.float64),
                                  minlength=len(levels)))
    n, total = len(scores), max(float(outcomes.sum()), 1.0)
    steps = np.linspace(0, n, points + 1)
    captured = np.interp(steps, np.concatenate(([0], people)), np.concatenate(([0], found)))
    return [(float(k / max(n, 1)), float(c / total)) for k, c in zip(steps, captured,
                                                                       strict=True)]


def histogram(scores: Scores, outcomes: Outcomes, bins: int = 20
              ) -> tuple[list[float], list[int], list[int]]:
    """Score histogram per outcome: edges, converted counts, other counts."""
    low, high = (int(scores.min()), int(scores.max())) if len(scores) else (0, 1)
    edges = np.linspace(low, high + 1, bins + 1)
    won, _ = np.histogram(scores[outcomes], bins=edges)
    lost, _ = np.histogram(scores[~outcomes], bins=edges)
    return [float(e) for e in edges], [int(v) for v in won], [int(v) for v in lost]
