"""Backtest: figures through the core, the bootstrap, bands, scores-out, the HTML report,
and the two commands' exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.bench_learn import write_history
from syncer.cli import main
from syncer.qualify import load_model
from syncer.qualify.learn import backtest_profiles, history_rows, read_history, split_history
from syncer.qualify.learn.metrics import auc_interval, lift_curve, score_bands

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config" / "model.example.yaml"


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(tmp_path_factory.mktemp("backtest") / "history.csv", 3000, seed=21)


@pytest.fixture(scope="module")
def learned_model(history_file: Path) -> Path:
    output = history_file.with_name("learned.yaml")
    code = main(["model", "calibrate", "--history", str(history_file), "--outcome", "Won",
                 "--time", "First Contact", "--exclude", "Noise", "--output", str(output)])
    assert code == 0
    return output


def test_bootstrap_interval_is_seeded_and_brackets_the_auc() -> None:
    rng = np.random.default_rng(2)
    won = rng.random(3000) < 0.3
    scores = np.round(won * 5 + rng.normal(0, 6, 3000)).astype(np.int64)
    low, high = auc_interval(scores, won)
    auc = roc_auc_score(won, scores)
    assert low < auc < high and high - low < 0.08
    assert auc_interval(scores, won) == (low, high)


def test_bands_keep_ties_together_best_first() -> None:
    scores = np.array([5] * 50 + [1] * 30 + [0] * 20, dtype=np.int64)
    won = np.array([True] * 40 + [False] * 10 + [True] * 6 + [False] * 44)
    bands = score_bands(scores, won)
    assert [(b.low, b.high, b.people, b.converted) for b in bands] == [
        (5, 5, 50, 40), (1, 1, 30, 6), (0, 0, 20, 0)]
    assert bands[0].lift == pytest.approx(0.8 / 0.46)
    curve = lift_curve(scores, won, points=10)
    assert curve[0] == (0.0, 0.0) and curve[-1] == (1.0, 1.0)


def test_backtest_profiles_judges_two_models_through_the_core(history_file: Path,
                                                              learned_model: Path) -> None:
    history = read_history(history_file, "Won", "First Contact")
    rows = history_rows(history, split_history(history).test)
    report = backtest_profiles(rows, load_model(learned_model), load_model(SHIPPED))
    people = len(rows)                                  # about 600: the newest 20% of 3,000
    assert 590 <= people <= 610 and report.people == people and report.dated
    assert report.model.auc > 0.7 and report.against is not None
    assert report.model.auc > report.against.auc
    assert sum(b.people for b in report.model.bands) == people
    assert sum(s.people for s in report.model.stages) == people
    assert sum(w.people for w in report.model.weeks) == people
    assert json.dumps(report.summary())


def test_scores_out_recomputes_the_reported_auc_and_report_has_charts(
        history_file: Path, learned_model: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    scores, page = tmp_path / "scores.csv", tmp_path / "report.html"
    code = main(["model", "backtest", "--history", str(history_file), "--outcome", "Won",
                 "--time", "First Contact", "--model", str(learned_model), "--against",
                 str(SHIPPED), "--json", "--scores-out", str(scores), "--report", str(page)])
    assert code == 0
    reported = json.loads(capsys.readouterr().out)
    with scores.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "score", "stage", "outcome"]
    recomputed = roc_auc_score([int(r["outcome"]) for r in rows], [int(r["score"]) for r in rows])
    assert abs(recomputed - reported["model"]["auc"]) < 0.005
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") >= 4 and "<script" not in html and "http://" not in \
        html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_calibrate_prints_a_summary(history_file: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "m.yaml"
    assert main(["model", "calibrate", "--history", str(history_file), "--outcome", "Won",
                 "--time", "First Contact", "--split-at", "2025-11-01", "--mql-rate", "0.2",
                 "--output", str(output), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"]["train"] + summary["rows"]["test"] == 3000
    assert summary["excluded"]["Lead ID"].startswith("the id")
    assert summary["auc_95"][0] < summary["auc_test"] < summary["auc_95"][1]
    assert load_model(output).version == summary["version"]


@pytest.mark.parametrize(("args", "expected"), [
    (["--outcome", "Nope"], "'Nope' is not in the file"),
    (["--outcome", "Landing Page"], "is not a known outcome"),
    (["--outcome", "Won", "--time", "Lead Source"], "neither an ISO date"),
    (["--outcome", "Won", "--time", "First Contact", "--split-at", "x"], "ISO date"),
    (["--outcome", "Won", "--exclude", "Nope"], "'Nope' is not in the file"),
])
def test_bad_input_exits_2_with_one_line(history_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         args: list[str], expected: str) -> None:
    for command in ("calibrate", "backtest"):
        if command == "backtest" and "--exclude" in args:
            continue
        extra = (["--output", str(tmp_path / "m.yaml")] if command == "calibrate"
                 else ["--model", str(SHIPPED)])
        code = main(["model", command, "--history", str(history_file), *args, *extra])
        err = capsys.readouterr().err
        assert code == 2 and expected in err and "Traceback" not in err


def test_leaky_column_exits_2_naming_it(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["id,source,note,won"] + [f"{i},{'ab'[i % 2]},{'won' if i % 3 == 0 else 'x'},"
                                     f"{int(i % 3 == 0)}" for i in range(300)]
    path = tmp_path / "leaky.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code = main(["model", "calibrate", "--history", str(path), "--outcome", "won",
                 "--output", str(tmp_path / "m.yaml"), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and "'note'" in captured.err and "--allow 'note'" in captured.err
    assert "note" in json.loads(captured.out)["refused"]
    assert main(["model", "calibrate", "--history", str(path), "--outcome", "won",
                 "--allow", "note", "--output", str(tmp_path / "m.yaml")]) == 0
