"""Benchmark of crash recovery: reconciling open write intents at start-up.

    .venv/bin/python -m bench.bench_recovery [--intents N] [--history RUNS] [--postgres URL]

Builds a state where RUNS earlier failed runs each announced and closed 2,000 writes (the
history recovery must not pay for again), then one run killed mid-push left N intents
open (half of them landed in the CRM: the pulled CRM value equals the intended one).
Times `reconcile_interrupted_writes` on the first start (closes the N intents), on a
second start (nothing open: every run is marked reconciled). Since schema 24 the intents
are rows of write_intents (one per batch), not audit rows; bench/RESULTS.md keeps the
figures of the recovery before schema 6 (a correlated NOT EXISTS per intent over every
failed run: 19 minutes at 44,000 intents), which this script measured until then.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from syncer.run.recovery import reconcile_interrupted_writes
from syncer.store import intents as intent_store
from syncer.store import tables as t
from syncer.store.repository import Store

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
FIELDS = ("lifecyclestage", "syncer_score", "syncer_fit_grade", "hubspot_owner_id",
          "syncer_reasons")
REASONS = [{"rule_id": "fit.seniority", "points": 15.0, "detail": "VP title +15",
            "evidence_at": None}]


def audit_row(run_id: str, index: int, outcome: str) -> dict[str, Any]:
    return {"at": NOW - timedelta(hours=1), "run_id": run_id, "connector": "hubspot",
            "record_id": str(100_000 + index // 5), "person_key": f"p{index // 5}@example.com",
            "field": FIELDS[index % 5], "old_value": None, "new_value": f"v{index}",
            "outcome": outcome, "error": None, "reasons": REASONS,
            "model_version": "example@3f2a9c"}


def add_run(store: Store, run_id: str, status: str, started: datetime) -> None:
    store.start_run(run_id, ["hubspot"], started, False)
    store.finish_run(run_id, started + timedelta(minutes=1), status, {})


def build(store: Store, intents: int, history: int) -> None:
    """`history` failed runs, each with 2,000 fields written (their intents closed), and
    a killed run with `intents` fields announced in batches of 500 (a HubSpot push of 100
    records x 5 fields) and never closed."""
    for number in range(history):
        run_id = f"failed{number:04d}"
        add_run(store, run_id, "failed", NOW - timedelta(days=history - number))
        rows = [audit_row(run_id, i, "written") for i in range(2_000)]
        with store.transaction() as tx:
            for start in range(0, len(rows), 500):
                intent_store.close(tx, intent_store.announce(
                    tx, run_id, "hubspot", NOW, rows[start:start + 500]))  # type: ignore[arg-type]
            store.append_audit(tx, rows)
    add_run(store, "killed", "running", NOW - timedelta(hours=1))
    with store.transaction() as tx:
        for start in range(0, intents, 500):
            intent_store.announce(tx, "killed", "hubspot", NOW - timedelta(hours=1), [
                audit_row("killed", i, "intent")  # type: ignore[misc]
                for i in range(start, min(intents, start + 500))])
    records = []
    for record in range(-(-intents // 5)):
        values = {FIELDS[f]: f"v{record * 5 + f}" if f % 2 == 0 else "other"
                  for f in range(5)}  # fields 0, 2, 4 landed; 1 and 3 did not
        records.append({"connector": "hubspot", "record_id": str(100_000 + record),
                        "object_type": "contact", "person_key": f"p{record}@example.com",
                        "fields": {}, "crm_values": values, "pulled_at": NOW})
    with store.transaction() as tx:
        for start in range(0, len(records), 10_000):
            tx.execute(t.records.insert(), records[start:start + 10_000])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def cpu_timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall, this process's CPU, result): the CPU figure is what a shared machine's load
    does not inflate (the PostgreSQL server's own CPU is not in it)."""
    cpu = time.process_time()
    wall, result = timed(fn)
    return wall, time.process_time() - cpu, result


def measure(url: str, intents: int, history: int) -> list[tuple[str, str]]:
    """A state with `history` failed runs (all closed) and one killed run with `intents`
    open; the first and the second start's recovery."""
    store = Store.open(url)
    try:
        build_s, _ = timed(lambda: build(store, intents, history))
        owner = {"hubspot": "hubspot_owner_id"}
        first_s, first_cpu, closed = cpu_timed(lambda: reconcile_interrupted_writes(
            store, ["hubspot"], owner, NOW, "current"))
        second_s, again = timed(lambda: reconcile_interrupted_writes(
            store, ["hubspot"], owner, NOW, "current2"))
        landed = len(store.audit_rows(outcome="written", run_id="killed"))
        killed = store.run("killed")
        rows = [("state built (not timed)", f"{build_s:.1f} s"),
                ("history: failed runs x closed intents", f"{history} x 2,000"),
                ("first start: open intents closed", f"{closed:,} ({landed:,} landed)"),
                ("first start: wall", f"**{first_s:.2f} s**"),
                ("first start: CPU of the syncer process", f"{first_cpu:.2f} s"),
                ("second start: intents closed / wall", f"{again} / {second_s * 1000:.1f} ms"),
                ("killed run's status after", killed.status if killed else "?")]
    finally:
        store.close()
    return rows


def report(name: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{name}\n\n| measure | value |\n| --- | ---: |")
    for label, value in rows:
        print(f"| {label} | {value} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--postgres", default=os.environ.get("SYNCER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"{platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}")
    with tempfile.TemporaryDirectory() as folder:
        report("SQLite", measure(f"sqlite:///{Path(folder) / 'state.db'}", args.intents,
                                 args.history))
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            sep = "&" if "?" in args.postgres else "?"
            url = f"{args.postgres}{sep}options=-csearch_path%3D{schema}"
            report("PostgreSQL", measure(url, args.intents, args.history))
        finally:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
