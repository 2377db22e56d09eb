"""Benchmark of crash recovery: reconciling open write intents at start-up.

    .venv/bin/python -m bench.bench_recovery [--intents N] [--history RUNS] [--postgres URL]

Builds a state where RUNS earlier failed runs each announced and closed 2,000 writes (the
history recovery must not pay for again), then one run killed mid-push left N intents
open (half of them landed in the CRM: the pulled CRM value equals the intended one).
Times `reconcile_interrupted_writes` on the first start (closes the N intents), on a
second start (nothing open: every run is marked reconciled) and, for comparison, the
query recovery used before schema 6 (a correlated NOT EXISTS per intent over every failed
run) on a smaller open set, since at 44,000 intents it ran for 19 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
import types
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from syncer.run.recovery import reconcile_interrupted_writes
from syncer.store import tables as t
from syncer.store.repository import Store

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
FIELDS = ("lifecyclestage", "syncer_score", "syncer_fit_grade", "hubspot_owner_id",
          "syncer_reasons")
BEFORE = "28cf357"
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
    for number in range(history):
        run_id = f"failed{number:04d}"
        add_run(store, run_id, "failed", NOW - timedelta(days=history - number))
        rows = [audit_row(run_id, i, "intent") for i in range(2_000)]
        with store.transaction() as tx:
            store.append_audit(tx, rows + [r | {"outcome": "written"} for r in rows])
    add_run(store, "killed", "running", NOW - timedelta(hours=1))
    for start in range(0, intents, 20_000):
        with store.transaction() as tx:
            store.append_audit(tx, [audit_row("killed", i, "intent")
                                    for i in range(start, min(intents, start + 20_000))])
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


def old_recovery() -> Any:
    """syncer/run/recovery.py as it was before schema 6 (commit 28cf357), from git; None
    outside a checkout."""
    try:
        source = subprocess.run(["git", "show", f"{BEFORE}:syncer/run/recovery.py"], check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("recovery_before")
    exec(compile(source, "recovery_before.py", "exec"), module.__dict__)
    return module


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


def measure_before(before: Any, url: str, intents: int, history: int) -> list[tuple[str, str]]:
    """The recovery of 28cf357 on the same kind of state (its query runs unchanged on
    schema 6; the open-intents index is dropped so it runs as it did on schema 5)."""
    store = Store.open(url)
    try:
        build(store, intents, history)
        with store.engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_audit_open_intents"))
        owner = {"hubspot": "hubspot_owner_id"}
        first_s, closed = timed(lambda: before.reconcile_interrupted_writes(
            store, ["hubspot"], owner, NOW, "current"))
        second_s, _ = timed(lambda: before.reconcile_interrupted_writes(
            store, ["hubspot"], owner, NOW, "current2"))
    finally:
        store.close()
    return [(f"before ({BEFORE}): first start, {closed:,} open", f"{first_s:.2f} s"),
            (f"before ({BEFORE}): second start, nothing open", f"{second_s:.2f} s")]


def report(name: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{name}\n\n| measure | value |\n| --- | ---: |")
    for label, value in rows:
        print(f"| {label} | {value} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--old-intents", type=int, default=10_000,
                        help="open intents for the recovery before schema 6 (0: skip it)")
    parser.add_argument("--postgres", default=os.environ.get("SYNCER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"{platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}")
    with tempfile.TemporaryDirectory() as folder:
        report("SQLite", measure(f"sqlite:///{Path(folder) / 'state.db'}", args.intents,
                                 args.history))
        before = old_recovery()
        if args.old_intents and before is not None:
            report(f"SQLite, the recovery of {BEFORE}", measure_before(
                before, f"sqlite:///{Path(folder) / 'before.db'}", args.old_intents,
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
