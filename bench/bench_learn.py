"""Benchmark of `syncer model calibrate` and `backtest` on a synthetic history.

    .venv/bin/python -m bench.bench_learn [--rows 100000] [--seed 14] [--keep DIR]

The history is generated, not real: one row per lead with a first-contact date (one year,
rows in random order), a lead source, a landing page, a country, an occupation (a third
missing), visits, seconds on the site, pages per visit and a noise column, and a `won`
outcome drawn from a planted logistic model (source, landing page, occupation and time on
site matter; country and the noise column do not). Both commands run as a user runs them,
through the CLI in this process (`syncer.cli.main`), each timed on the wall clock:
calibrate on the oldest 80% by date, then backtest the learned model against the shipped
one on the newest 20%. The bars (issue 14): calibrate <= 60 s, backtest <= 30 s at 100,000
rows on 2 cores.

`write_history` is also what tests/test_learn_*.py use to plant a signal and check that
calibration finds it (`flat=True`: only source, landing page, date and outcome, the shape
of a CRM export with nothing else).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

SOURCES = {"Referral": 1.6, "Partner": 1.0, "Organic Search": 0.3, "Paid Search": 0.0,
           "Direct": 0.0, "Social": -0.8, "Events": 0.4}
PAGES = {"/pricing": 1.2, "/demo": 1.5, "/product": 0.4, "/blog": -0.6, "/careers": -2.0,
         "/home": 0.0}
OCCUPATIONS = {"Working Professional": 1.4, "Student": -0.5, "Unemployed": 0.2}
COUNTRIES = ("India", "United States", "Germany", "Brazil", "Kenya")
START = date(2025, 1, 1)


def _pick(rng: np.random.Generator, table: dict[str, float], n: int
          ) -> tuple[np.ndarray, np.ndarray]:
    names = np.array(list(table))
    index = rng.integers(0, len(names), size=n)
    return names[index], np.array(list(table.values()))[index]


def write_history(path: Path, rows: int, seed: int = 14, flat: bool = False) -> Path:
    """Write a synthetic history CSV with a planted signal (see the module docstring)."""
    rng = np.random.default_rng(seed)
    source, source_w = _pick(rng, SOURCES, rows)
    page, page_w = _pick(rng, PAGES, rows)
    job, job_w = _pick(rng, OCCUPATIONS, rows)
    job_known = rng.random(rows) > 0.33
    seconds = np.round(rng.gamma(1.5, 300, rows))
    visits = rng.poisson(3, rows)
    pages = np.round(rng.gamma(2, 1.2, rows), 2)
    days = rng.integers(0, 365, rows)
    logit = -1.2 + source_w + page_w
    if not flat:
        logit += np.where(job_known, job_w, -0.4) + 0.9 * np.log1p(seconds / 300) - 0.5
    won = rng.random(rows) < 1 / (1 + np.exp(-logit))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        head = ["Lead ID", "First Contact", "Lead Source", "Landing Page"]
        extra = ["Country", "Occupation", "Visits", "Time On Site", "Pages Per Visit", "Noise"]
        writer.writerow(head + ([] if flat else extra) + ["Won"])
        for i in range(rows):
            row = [f"L{i:07d}", (START + timedelta(days=int(days[i]))).isoformat(),
                   source[i], page[i]]
            if not flat:
                row += [COUNTRIES[i % len(COUNTRIES)], job[i] if job_known[i] else "",
                        int(visits[i]), int(seconds[i]), pages[i], f"{rng.random():.4f}"]
            writer.writerow([*row, "yes" if won[i] else "no"])
    return path


def _timed(argv: list[str]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one CLI command, and its --json output."""
    from syncer.cli import main

    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed with exit code {code}")
    result: dict[str, Any] = json.loads(out.getvalue())
    return elapsed, result


def run(rows: int, seed: int, folder: Path) -> list[tuple[str, str]]:
    history = write_history(folder / "history.csv", rows, seed)
    model = folder / "learned.yaml"
    common = ["--history", str(history), "--outcome", "Won", "--time", "First Contact"]
    calibrate, learned = _timed(["model", "calibrate", *common, "--output", str(model),
                                 "--json"])
    backtest, judged = _timed(["model", "backtest", *common, "--model", str(model), "--json",
                               "--scores-out", str(folder / "scores.csv"),
                               "--report", str(folder / "report.html")])
    low, high = judged["model"]["auc_95"]
    return [("rows", f"{rows:,}"), ("train / test", f"{learned['rows']['train']:,} / "
                                                   f"{learned['rows']['test']:,}"),
            ("calibrate (s)", f"{calibrate:.1f}"), ("backtest (s)", f"{backtest:.1f}"),
            ("test AUC learned", f"{judged['model']['auc']:.3f} [{low:.3f}, {high:.3f}]"),
            ("test AUC shipped", f"{judged['against']['auc']:.3f}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        figures = run(args.rows, args.seed, args.keep)
    else:
        with tempfile.TemporaryDirectory() as folder:
            figures = run(args.rows, args.seed, Path(folder))
    print(f"\nmachine: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}", file=sys.stderr)
    print("| " + " | ".join(k for k, _ in figures) + " |")
    print("|" + " --- |" * len(figures))
    print("| " + " | ".join(v for _, v in figures) + " |")


if __name__ == "__main__":
    main()
