"""What each history column is, and the levels a learned rule gives points to.

A column is a **number** when at least 95% of its present values read as numbers and it
has more than 10 distinct values (fewer distinct numbers, such as a 1-5 rating, score
better as a table of values). Anything else is **text**. The levels are decided on the
train part only (the test part must not shape the model it judges):

- text: one level per value (ignoring case, spaces and '_', as tables do); values held by fewer than
  max(20, 0.5% of the train rows) people are grouped into "(other)", the rule's `default`;
- number: 4-8 bins cut at quantiles, edges rounded to 2 significant digits so a person
  can read them ("below 1,500 seconds");
- missing (or, for a number, not a number) is always its own level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from syncer.qualify.learn.history import Column, as_number

OTHER = "(other)"
MISSING_LEVEL = "(missing)"
NUMERIC_SHARE = 0.95
NUMERIC_MIN_DISTINCT = 10
NEAR_UNIQUE_SHARE = 0.5
RARE_MIN_PEOPLE = 20
RARE_MIN_SHARE = 0.005
MAX_BINS = 8
MIN_BINS = 4

Kind = Literal["number", "text"]
Codes = npt.NDArray[np.int64]


def column_kind(cells: Sequence[str | None]) -> Kind:
    present = [c for c in cells if c is not None]
    if not present:
        return "text"
    numbers = [n for n in (as_number(c) for c in present) if n is not None]
    numeric = len(numbers) >= NUMERIC_SHARE * len(present)
    return "number" if numeric and len(set(numbers)) > NUMERIC_MIN_DISTINCT else "text"


def why_unusable(cells: Sequence[str | None], kind: Kind) -> str | None:
    """Why a column cannot become a rule (None: it can): no values, one value, or a value
    per person (an id, a free-text note, an email)."""
    present = [c.lower() for c in cells if c is not None]
    distinct = len(set(present))
    if distinct == 0:
        return "no values"
    if distinct == 1 and len(present) == len(cells):
        return "one value for everyone"
    if kind == "text" and distinct > NEAR_UNIQUE_SHARE * len(present) and distinct > 2:
        return f"near-unique ({distinct:,} distinct values in {len(present):,} rows)"
    if kind == "number" and distinct == len(present) and all(
            float(n or 0).is_integer() for n in map(as_number, present)):
        return "a different whole number for everyone (an id or a sequence)"
    return None


@dataclass(frozen=True, slots=True)
class Feature:
    """A column turned into levels: `codes[i]` is row i's level (for every row of the
    history), `labels[code]` its readable name, `people`/`converted` the train counts."""

    column: Column
    kind: Kind
    labels: tuple[str, ...]
    codes: Codes
    edges: tuple[float, ...] = ()
    keys: tuple[str, ...] = ()   # text: the table key of each named level
    other: int | None = None
    missing: int | None = None

    @property
    def field(self) -> str:
        return self.column.field


def round2(value: float) -> float:
    """Two significant digits: bin edges a person can read (1532.4 -> 1500)."""
    return float(f"{value:.2g}")


def number_edges(values: npt.NDArray[np.float64]) -> tuple[float, ...]:
    """4-8 bins' inner edges at quantiles of the train values, rounded, distinct, above the
    smallest value (a bin nobody can fall in is no bin)."""
    low = float(values.min())
    edges: list[float] = []
    for count in (MAX_BINS, 12, 16, 24, 32):
        grid = np.quantile(values, np.arange(1, count) / count)
        edges = sorted({round2(float(q)) for q in grid if round2(float(q)) > low})
        if len(edges) >= MIN_BINS - 1:
            break
    if len(edges) > MAX_BINS - 1:
        picks = np.linspace(0, len(edges) - 1, MAX_BINS - 1).round().astype(int)
        edges = [edges[i] for i in sorted(set(picks.tolist()))]
    return tuple(edges)


def _bin_label(edges: tuple[float, ...], index: int) -> str:
    if not edges:
        return "any value"
    if index == 0:
        return f"below {edges[0]:g}"
    if index == len(edges):
        return f"{edges[-1]:g} and over"
    return f"{edges[index - 1]:g} to under {edges[index]:g}"


def number_feature(column: Column, train: Sequence[int]) -> Feature:
    parsed = [None if c is None else as_number(c) for c in column.cells]
    numbers = np.array([np.nan if n is None else n for n in parsed], dtype=np.float64)
    present = ~np.isnan(numbers)
    train_index = np.asarray(train, dtype=np.int64)
    train_values = numbers[train_index][present[train_index]]
    edges = number_edges(train_values) if train_values.size else ()
    codes = np.searchsorted(np.asarray(edges, dtype=np.float64), np.nan_to_num(numbers),
                            side="right").astype(np.int64)
    missing = len(edges) + 1
    codes[~present] = missing
    labels = (*(_bin_label(edges, i) for i in range(len(edges) + 1)), MISSING_LEVEL)
    return Feature(column, "number", labels, codes, edges=edges, missing=missing)


def canonical(value: str) -> str:
    """A text value as the core compares it: numbers as numbers ("15.0" -> "15")."""
    number = as_number(value)
    if number is None:
        return value
    return str(int(number)) if number.is_integer() else str(number)


def level_key(text: str) -> str:
    """The key two values share when a points table cannot tell them apart: the core
    compares table keys ignoring case, runs of spaces and '_' ("Paid_Search" ==
    "paid search"), so they must be one level, or the written table would not load."""
    return " ".join(text.replace("_", " ").lower().split())


def text_feature(column: Column, train: Sequence[int]) -> Feature:
    spelled = [None if c is None else canonical(c) for c in column.cells]
    lowered = [None if c is None else level_key(c) for c in spelled]
    spelling = Counter((level_key(c), c) for c in (spelled[i] for i in train)
                       if c is not None)
    kept_counts: Counter[str] = Counter()
    for i in train:
        value = lowered[i]
        if value is not None:
            kept_counts[value] += 1
    floor = max(RARE_MIN_PEOPLE, RARE_MIN_SHARE * len(train))
    kept = [value for value, n in kept_counts.most_common() if n >= floor]
    shown: dict[str, str] = {}
    for (low, text), _ in spelling.most_common():
        shown.setdefault(low, text)
    index = {value: i for i, value in enumerate(kept)}
    other, missing = len(kept), len(kept) + 1
    codes = np.fromiter((missing if v is None else index.get(v, other) for v in lowered),
                        dtype=np.int64, count=len(lowered))
    labels = (*(shown[v] for v in kept), OTHER, MISSING_LEVEL)
    return Feature(column, "text", labels, codes, keys=tuple(shown[v] for v in kept),
                   other=other, missing=missing)


def make_feature(column: Column, kind: Kind, train: Sequence[int]) -> Feature:
    return number_feature(column, train) if kind == "number" else text_feature(column, train)


def level_counts(feature: Feature, train: Sequence[int], outcomes: npt.NDArray[np.bool_]
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """People and converted people per level, on the train part (`outcomes`: every row)."""
    rows = np.asarray(train, dtype=np.int64)
    codes = feature.codes[rows]
    size = len(feature.labels)
    people = np.bincount(codes, minlength=size).astype(np.int64)
    won = np.bincount(codes, weights=outcomes[rows].astype(np.float64), minlength=size)
    return people, won.round().astype(np.int64)
