"""The two halves meet: rows of the state store's outcome history (syncer/outcome_history)
exported as CSV calibrate like any history file, and backtest_profiles takes the rows
themselves."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from syncer.domain.types import Activity, ActivityType, Person, Profile
from syncer.qualify.learn import (
    Options,
    backtest_profiles,
    calibrate,
    read_history,
    split_history,
)
from syncer.run.outcome_history import HistoryRow, export_history_csv

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
SOURCES = {"referral": 2.0, "webinar": 0.8, "paid": -0.2, "social": -1.2}


def store_rows(count: int) -> list[HistoryRow]:
    rng = np.random.default_rng(4)
    rows = []
    names = list(SOURCES)
    for i in range(count):
        source = names[int(rng.integers(0, len(names)))]
        visits = int(rng.poisson(4))
        won = bool(rng.random() < 1 / (1 + np.exp(-(SOURCES[source] - 1 + 0.15 * visits))))
        as_of = START + timedelta(hours=6 * i)
        person = Person("hubspot", f"c{i}", "contact", f"p{i}@example.com",
                        country=["Germany", "France"][i % 2],
                        properties={"source": source, "visits": visits})
        activity = Activity("hubspot", f"a{i}", f"c{i}", ActivityType.PAGE_VIEW,
                            as_of - timedelta(days=3))
        rows.append(HistoryRow(f"p{i}@example.com",
                               Profile(f"p{i}@example.com", (person,), (activity,)),
                               won, as_of))
    return rows


def test_store_history_calibrates_and_backtests(tmp_path: Path) -> None:
    rows = store_rows(1500)
    path = tmp_path / "store-history.csv"
    export_history_csv(rows, path)
    history = read_history(path, "outcome", "as_of")
    assert history.dated and history.id_header == "id"
    split = split_history(history)
    result = calibrate(history, split, Options(), date(2026, 12, 7))
    assert "source" in result.used and "email" not in result.used
    table = next(r for r in result.model.fit.rules if r.id == "source").table
    assert table is not None and table["referral"] > table["paid"] > table["social"]
    report = backtest_profiles(rows[-300:], result.model)
    assert report.model.auc > 0.65 and report.dated
