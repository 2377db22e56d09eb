"""Calibration: column typing, the leakage guard, planted signal found, a model that loads
and scores through the qualification core like any other."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.bench_learn import write_history
from syncer.qualify import load_model, parse_model, qualify
from syncer.qualify.learn import (
    Calibration,
    History,
    HistoryError,
    LeakageRefused,
    Options,
    Split,
    calibrate,
    history_rows,
    read_history,
    split_history,
)
from syncer.qualify.learn.calibrate import mql_threshold
from syncer.qualify.learn.columns import (
    MISSING_LEVEL,
    OTHER,
    canonical,
    column_kind,
    level_key,
    make_feature,
    number_edges,
    why_unusable,
)
from syncer.qualify.learn.guard import refused_columns
from syncer.qualify.learn.history import Column, as_number
from syncer.qualify.value_tests import table_key

REPO = Path(__file__).resolve().parents[1]
Learned = tuple[History, Split, Calibration]
TODAY = date(2026, 12, 7)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(tmp_path_factory.mktemp("learn") / "history.csv", 6000, seed=3)


@pytest.fixture(scope="module")
def learned(synthetic: Path) -> Learned:
    history = read_history(synthetic, "Won", "First Contact")
    split = split_history(history)
    return history, split, calibrate(history, split, Options(exclude=("Noise",)), TODAY)


def test_columns_are_numbers_or_text() -> None:
    assert column_kind([str(i) for i in range(30)] + [None, "n/a?"]) == "number"
    assert column_kind([str(i % 5) for i in range(30)]) == "text"   # a 1-5 rating
    assert column_kind(["a", "b", "1"] * 10) == "text"
    assert why_unusable([f"id{i}" for i in range(50)], "text") is not None
    assert why_unusable(["No"] * 50, "text") == "one value for everyone"
    assert why_unusable([str(i) for i in range(50)], "number") is not None
    assert why_unusable([str(i % 20) for i in range(50)], "number") is None


def test_number_edges_are_rounded_rising_and_four_to_eight_bins() -> None:
    values = np.random.default_rng(1).gamma(1.5, 300, 5000)
    edges = number_edges(values)
    assert 3 <= len(edges) <= 7
    assert list(edges) == sorted(set(edges))
    assert all(float(f"{e:.2g}") == e for e in edges)


def test_rare_text_values_are_grouped_and_missing_is_its_own_level() -> None:
    cells = tuple(["Google"] * 60 + ["google"] * 10 + ["Fax"] * 3 + [None] * 27)
    feature = make_feature(Column("Source", "source", cells), "text", range(len(cells)))
    assert feature.keys == ("Google",)
    assert feature.labels == ("Google", OTHER, MISSING_LEVEL)
    assert feature.codes[60] == 0 and feature.codes[70] == 1 and feature.codes[99] == 2


def test_guard_refuses_separators_and_columns_filled_for_positives() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    won = rng.random(n) < 0.4
    honest = tuple(rng.choice(["a", "b", "c"], n).tolist())
    closed = tuple(("Closed won" if w else "Lost") if rng.random() < 0.97 else "Lost"
                   for w in won)
    rating = tuple(("High" if w else "Low") if rng.random() < (0.7 if w else 0.3) else None
                   for w in won)
    columns = [Column("Honest", "honest", honest), Column("Outcome Note", "outcome_note",
                                                          closed),
               Column("Rating", "rating", rating)]
    features = [make_feature(c, "text", range(n)) for c in columns]
    refusals = refused_columns(features, range(n), won)
    assert [r.header for r in refusals] == ["Outcome Note", "Rating"]
    assert "AUC" in refusals[0].message() and "--allow 'Outcome Note'" in refusals[0].message()
    assert "filled mostly for converted people" in refusals[1].message()
    assert refused_columns(features, range(n), won, allowed=("outcome_note", "Rating")) == []


def test_calibration_finds_the_planted_signal(learned: Learned) -> None:
    _, split, result = learned
    assert result.test.auc > 0.75
    rules = {r.id: r for r in result.model.fit.rules}
    source = rules["lead_source"].table
    assert source is not None
    assert source["Referral"] > source["Partner"] > source["Paid Search"] > source["Social"]
    page = rules["landing_page"].table
    assert page is not None
    assert page["/demo"] > page["/blog"] > page["/careers"]
    assert "country" not in rules or max(map(abs, (rules["country"].table or {}).values())) < 8
    time_bins = rules["time_on_site"].bins
    assert time_bins is not None and time_bins[-1].points > time_bins[0].points
    assert result.rows_train == len(split.train) == 4790   # 80%, then off a shared day


def test_written_model_loads_and_scores_through_the_core(learned: Learned,
                                                         tmp_path: Path) -> None:
    history, split, result = learned
    path = tmp_path / "learned.yaml"
    path.write_text(result.text, encoding="utf-8")
    model = load_model(path)
    assert model.version == result.model.version
    assert result.text.startswith("# Learned by `syncer model calibrate`")
    rule = model.fit.rules[0]
    assert rule.evidence and rule.description.startswith("learned from 4,790 people")
    row = history_rows(history, [split.test[0]])[0]
    decision = qualify(row.profile, model, row.as_of)
    assert decision.score == round(decision.fit_points)
    assert [g.grade for g in model.fit.grades][-1] == "D"
    mql_share = result.test.mql_share
    assert 0.1 < mql_share < 0.5


def test_flat_lead_table_with_a_time_split(tmp_path: Path) -> None:
    """Source, landing page, first-contact date, won: the shape of a bare CRM export."""
    path = write_history(tmp_path / "flat.csv", 4000, seed=9, flat=True)
    history = read_history(path, "Won", "First Contact")
    split = split_history(history, "2025-10-01")
    result = calibrate(history, split, Options(), TODAY)
    assert set(result.used) == {"Lead Source", "Landing Page"}
    assert result.test.auc > 0.68
    assert result.test.interval[0] < result.test.auc < result.test.interval[1]


def test_precision_target_and_base_model(learned: Learned) -> None:
    history, split, _ = learned
    data = yaml.safe_load((REPO / "config" / "model.example.yaml").read_text())
    data["lifecycle"].pop("recycle")   # people of a bare history have no activities at all
    base = parse_model(data)
    result = calibrate(history, split, Options(exclude=("Noise",), precision=0.7, base=base),
                       TODAY)
    assert result.test.mql_precision is not None and result.test.mql_precision > 0.6
    assert result.model.engagement.rules == base.engagement.rules
    assert result.model.routing == base.routing
    assert result.model.qualification.hand_raise == base.qualification.hand_raise
    assert result.model.qualification.min_fit is None


def test_mql_threshold_for_a_share_or_a_precision() -> None:
    scores = np.repeat(np.arange(10), 10)             # 100 people, scores 0-9
    won = scores >= 7
    won[95:] = False                                  # the top few are luck, not signal
    assert mql_threshold(scores, won, Options(mql_rate=0.3)) == 7
    assert mql_threshold(scores, won, Options(precision=0.5)) == 5
    with pytest.raises(HistoryError, match="no MQL threshold reaches it"):
        mql_threshold(scores, won, Options(precision=0.95))


def test_leaky_column_stops_calibration(tmp_path: Path) -> None:
    rows = ["id,source,note,won"] + [f"{i},{'ab'[i % 2]},{'won it' if i % 3 == 0 else 'lost'},"
                                     f"{int(i % 3 == 0)}" for i in range(300)]
    path = tmp_path / "leaky.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    history = read_history(path, "won")
    with pytest.raises(LeakageRefused) as refused:
        calibrate(history, split_history(history), Options(), TODAY)
    assert [r.header for r in refused.value.refusals] == ["note"]


def test_standard_fields_keep_the_type_the_core_reads(tmp_path: Path) -> None:
    """A numeric-looking country code is text to the core (a table, not bins); a text
    company size cannot fill `employees` (a number) and is left out, saying why."""
    rng = np.random.default_rng(8)
    lines = ["id,Country,Employees,Source,won"]
    for i in range(1200):
        country = int(rng.integers(1, 15))
        source = "ab"[i % 2]
        won = rng.random() < (0.6 if country < 5 else 0.2) + (0.1 if source == "a" else 0)
        lines.append(f"{i},{country},{'1-10' if i % 3 else '11-50'},{source},{int(won)}")
    path = tmp_path / "typed.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    history = read_history(path, "won")
    result = calibrate(history, split_history(history), Options(), TODAY)
    rule = next(r for r in result.model.fit.rules if r.field == "country")
    assert rule.table is not None and rule.bins is None
    assert "employees must be a number" in result.excluded["Employees"]


def test_levels_group_values_exactly_as_the_core_compares_table_keys() -> None:
    values = ["Paid Search", "paid_search", "PAID  SEARCH ", "Social_Media", "social media",
              "15", "15.0", "2.5"]
    for a in values:
        for b in values:
            same_level = level_key(canonical(a)) == level_key(canonical(b))
            assert same_level == (table_key(_core_value(a)) == table_key(_core_value(b)))


def _core_value(text: str) -> object:
    """A history cell as rows.py hands it to the core: numbers as floats."""
    number = as_number(text)
    return number if number is not None else text.strip()
