"""Benchmark: what the speed-to-lead SLA costs a run, by the size of the assignments table.

    .venv/bin/python -m bench.bench_sla [--assignments 20000,100000] [--state URL]

Fills a fresh state (SQLite in a temporary folder unless --state names an empty database)
with N assignments of N people (a tenth of them reassigned once by the SLA, spread over 30
days) and times what a run reads for the SLA (syncer/run/sla.py): every person's marks in
ascending key order (a full run), one person's (a webhook's focused run), and the people
due since the last day (an incremental run). The SLA verdicts themselves are pure and cost
microseconds; the figures of record are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timedelta, timezone

from syncer.qualify.routing_model import Routing
from syncer.run.sla import SlaReview
from syncer.store import routing as routing_store
from syncer.store.repository import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ROUTING = Routing.model_validate({
    "reps": [{"email": "dana@x.test"}, {"email": "marco@x.test"}],
    "sla": {"work_within": "4h", "then_queue": "queue@x.test", "recycle_after": "7d"}})


def fill(store: Store, people: int) -> list[str]:
    keys = [f"p{i:07d}@x.test" for i in range(people)]
    rows = []
    for i, key in enumerate(keys):
        at = NOW - timedelta(days=30) + timedelta(seconds=i * 30 * 86_400 // people)
        rows.append({"person_key": key, "owner_email": "dana@x.test", "team": "default",
                     "rule": "round_robin", "reason": "r", "stage": "mql",
                     "qualified_at": at, "assigned_at": at, "owner_written_at": None,
                     "run_id": "bench"})
        if i % 10 == 0:
            rows.append({**rows[-1], "owner_email": "marco@x.test", "rule": "sla_reassign",
                         "assigned_at": at + timedelta(hours=4)})
    with store.transaction() as tx:
        for start in range(0, len(rows), 5000):
            routing_store.save_assignments(tx, rows[start:start + 5000])
    return keys


def measure(url: str, people: int) -> tuple[float, float, float, int]:
    store = Store.open(url)
    try:
        keys = fill(store, people)
        review = SlaReview(store, ROUTING, NOW, "bench")
        started = time.perf_counter()
        for key in keys:
            review.marks_of(key)
        walk = time.perf_counter() - started
        started = time.perf_counter()
        SlaReview(store, ROUTING, NOW, "bench").marks_of(keys[len(keys) // 2])
        one = time.perf_counter() - started
        started = time.perf_counter()
        due = SlaReview(store, ROUTING, NOW, "bench").due_keys()
        return walk, one, time.perf_counter() - started, len(due)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", default="20000,100000")
    parser.add_argument("--state", help="an empty state database URL (default: SQLite)")
    args = parser.parse_args()
    print(f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"{'people':>8} {'all marks (s)':>14} {'one person (ms)':>16} "
          f"{'due keys (s)':>13} {'due':>6}")
    for people in (int(n) for n in args.assignments.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            url = args.state or f"sqlite:///{folder}/bench.db"
            walk, one, due_time, due = measure(url, people)
        print(f"{people:>8} {walk:>14.2f} {one * 1000:>16.1f} {due_time:>13.2f} {due:>6}")


if __name__ == "__main__":
    main()
