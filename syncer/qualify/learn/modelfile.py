"""Learned points written as an ordinary model file, the same language an admin writes.

A learned model is not a black box beside the hand-written one: it is `table` and `bins`
fit rules with `evidence` (how many people and conversions stand behind each value), read
by `load_model` and scored by `qualify` like any other model, shown by `model show`, and
published or rolled back the same way. An admin can edit it like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import NotRequired, TypedDict

import numpy as np
import numpy.typing as npt
import yaml

from syncer.domain.json_values import JSONObject, as_list, as_object
from syncer.qualify import Model
from syncer.qualify.learn.activity_columns import activity_count_column
from syncer.qualify.learn.columns import MISSING_LEVEL, OTHER, Feature, level_counts

GRADE_SHARES = (("A", 0.10), ("B", 0.20), ("C", 0.30))
LOWEST_GRADE_MIN = -100000
CalibrationInfo = Mapping[str, str | int | float]


class Bin(TypedDict):
    """One band of a `bins` rule: the points below an edge (the last band has no edge)."""

    below: NotRequired[int | float]
    points: int


class Evidence(TypedDict):
    people: int
    converted: int


class LearnedRule(TypedDict):
    """A learned fit rule (`table` or `bins`), or an engagement aggregate (`activity`,
    `measure`, `within_days`) with the same bins, as the model file spells it."""

    id: str
    field: NotRequired[str]
    activity: NotRequired[str]
    measure: NotRequired[str]
    within_days: NotRequired[int]
    table: NotRequired[dict[str, int]]
    default: NotRequired[int]
    bins: NotRequired[list[Bin]]
    missing: NotRequired[int]
    evidence: NotRequired[dict[str, Evidence]]
    description: NotRequired[str]


class GradeBand(TypedDict):
    grade: str
    min: int | float


def rule_id(field: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", field)[:64]


def _evidence(feature: Feature, people: npt.NDArray[np.int64], won: npt.NDArray[np.int64]
              ) -> dict[str, Evidence]:
    return {label: {"people": int(people[i]), "converted": int(won[i])}
            for i, label in enumerate(feature.labels) if people[i] > 0}


def fit_rule(feature: Feature, points: Sequence[int], train: Sequence[int],
             outcomes: npt.NDArray[np.bool_], learned: str) -> LearnedRule:
    """One `table` (text) or `bins` (number) fit rule with its evidence; an
    activity-count column (activity_columns.py) becomes an engagement aggregate with the
    same bins (model_data puts it under engagement)."""
    people, won = level_counts(feature, train, outcomes)
    rule: LearnedRule = {"id": rule_id(feature.field), "field": feature.field}
    counted = activity_count_column(feature.field)
    if counted is not None and feature.kind != "text":
        # counted activities: an engagement aggregate over the same window
        rule = {"id": rule_id(feature.field), "activity": counted[0].value,
                "measure": "count", "within_days": counted[1]}
    if feature.kind == "text":
        assert feature.other is not None
        rule["table"] = {key: points[i] for i, key in enumerate(feature.keys)}
        rule["default"] = points[feature.other]
    else:
        edges = feature.edges
        bins: list[Bin] = [{"below": _number(edge), "points": points[i]}
                           for i, edge in enumerate(edges)]
        rule["bins"] = [*bins, {"points": points[len(edges)]}]
    if feature.missing is not None and people[feature.missing] > 0:
        rule["missing"] = points[feature.missing]
    rule["evidence"] = _evidence(feature, people, won)
    rule["description"] = f"learned from {len(train):,} people, {learned}"
    return rule


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def grades(fit: npt.NDArray[np.float64]) -> list[GradeBand]:
    """A-D from the train fit distribution: A the top 10%, B the next 20%, C the next
    30%, D the rest (strictly falling mins; a grade whose min would tie is left out)."""
    bands: list[GradeBand] = []
    share = 0.0
    for grade, part in GRADE_SHARES:
        share += part
        low = float(np.quantile(fit, 1 - share)) if fit.size else 0.0
        low = _number(round(low, 2))
        if low > LOWEST_GRADE_MIN and (not bands or low < bands[-1]["min"]):
            bands.append({"grade": grade, "min": low})
    bands.append({"grade": "D", "min": LOWEST_GRADE_MIN})
    return bands


def base_sections(base: Model | None) -> JSONObject:
    """What a `--base` model keeps: engagement, lifecycle, routing, hand-raises and named
    scores (its fit rules are replaced; its thresholds no longer fit the new points)."""
    if base is None:
        return {}
    data = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    sections = ("engagement", "lifecycle", "routing", "scores", "primary_score")
    kept: JSONObject = {key: data[key] for key in sections if key in data}
    q = data.get("qualification", {})
    kept["qualification"] = {k: q[k] for k in ("hand_raise", "hand_raise_days",
                                               "hysteresis") if k in q}
    return kept


def model_data(name: str, description: str, rules: Sequence[LearnedRule],
               grade_bands: Sequence[GradeBand], mql_score: float,
               base: Model | None, calibration: CalibrationInfo | None = None
               ) -> dict[str, object]:
    """The model as a dict, in the order the file shows it."""
    kept = base_sections(base)
    qualification: JSONObject = {
        "mode": "total", "mql_score": _number(mql_score),
        **as_object(kept.pop("qualification", {}), "base model: qualification")}
    engagement: dict[str, object] = dict(as_object(kept.pop("engagement", {}),
                                                   "base model: engagement"))
    aggregates = [r for r in rules if "measure" in r]
    if aggregates:
        engagement["rules"] = [*as_list(engagement.get("rules", []), "base model: engagement"
                                        ".rules"), *aggregates]
    data: dict[str, object] = {"name": name, "description": description,
                            "fit": {"rules": [r for r in rules if "measure" not in r],
                                    "grades": list(grade_bands)},
                            "engagement": engagement,
                            "qualification": qualification}
    data.update(kept)
    if calibration is not None:
        data["calibration"] = dict(calibration)
    return data


def model_text(data: Mapping[str, object], header: Sequence[str]) -> str:
    """The YAML file: a short comment header, then the model (leaf mappings inline)."""
    body = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=96,
                          default_flow_style=None)
    return "".join(f"# {line}".rstrip() + "\n" for line in header) + "\n" + body


def header_lines(source: str, learned: date, rows_train: int, rows_test: int,
                 auc: float | None) -> list[str]:
    shown = f"{auc:.3f} on the test part (through the qualification core)" if auc else "-"
    return [
        f"Learned by `syncer model calibrate` on {learned.isoformat()} from {source}:",
        f"{rows_train:,} people to learn from (train part), {rows_test:,} to judge it (test "
        "part).",
        f"Test AUC: {shown}.",
        "Points: 20 points double the odds of converting; each rule's most common value",
        f"gets 0; {OTHER} is any value too rare to learn from (the rule's `default`),",
        f"{MISSING_LEVEL} no value (`missing`). `evidence` lists, per value, the people of",
        "the train part and how many of them converted. Edit freely, then run",
        "`syncer model backtest` again.",
    ]
