"""Benchmark of the scale-out path: many tenants on procrastinate workers.

    .venv/bin/python -m bench.bench_tenants [--tenants 100] [--people 1000] [--workers 2]
        [--big 100000] [--small 20] [--postgres URL]

Phase 1: TENANTS tenants of PEOPLE people each (every tenant its own HubSpot and
Salesforce sandboxes, all served from this process), WORKERS `syncer worker` processes and
one `syncer dispatch --once` that queues one sync of every tenant-connector at once: the
first, full round; then a second `dispatch --once`: the incremental round a schedule runs
all day. Per tenant, the lag is from the moment the round was queued to the end of its
last run (procrastinate's own event times); the table shows p50/p99/max over tenants.

Phase 2: a BIG-person tenant on the `large` queue with a worker of its own, and SMALL small
tenants on `default` with another. Once the big tenant's run has started, the small
tenants' jobs are queued; their wait (queued -> started) shows whether the big one holds
them up. The big run is then stopped (SIGTERM: it ends after its batch).
Needs PostgreSQL: --postgres, else $SYNCER_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text

from bench.sandbox_config import example_config, point_at_sandboxes
from connectors.sandbox import build_sandbox
from connectors.sandbox.world import World
from tests.worker_helpers import scratch_database

NOW = datetime.now(UTC)


def start_boxes(stack: ExitStack, seed: int, people: int) -> dict[str, Any]:
    world = World(seed, people, NOW)
    boxes = {}
    for kind in ("hubspot", "salesforce"):
        sandbox = build_sandbox(kind, world)
        sandbox.start()
        stack.callback(sandbox.stop)
        boxes[kind] = sandbox
    return boxes


def write_tenant(directory: Path, name: str, boxes: dict[str, Any], url: str,
                 env: dict[str, str], queue: str = "default") -> None:
    data = example_config(directory)
    data.update(state={"url": url}, health={"enabled": False}, worker={"queue": queue},
                log_level="warning")
    point_at_sandboxes(data, boxes, prefix=name.upper(), env=env)
    for connector in data["connectors"]:
        connector["schedule"] = {"every_minutes": 600}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def syncer(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "syncer.cli", *args], env=env,
                                stdout=handle, stderr=subprocess.STDOUT)


def dispatch_once(directory: Path, url: str, env: dict[str, str]) -> None:
    """`syncer dispatch --once`: one sync of every tenant-connector queued."""
    subprocess.run([sys.executable, "-m", "syncer.cli", "dispatch", "--once", "--tenants",
                    str(directory), "--queue-url", url, "--log-level", "warning"],
                   env=env, check=True, capture_output=True)


def query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)).all())
    finally:
        engine.dispose()


JOB_TIMES = """
    SELECT j.lock, j.queueing_lock, j.status,
           min(e.at) FILTER (WHERE e.type = 'deferred') AS deferred,
           max(e.at) FILTER (WHERE e.type = 'started') AS started,
           max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed')) AS ended
    FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id
    WHERE j.task_name = 'syncer.sync' GROUP BY j.id, j.lock, j.queueing_lock, j.status
"""


def wait_for(condition: Any, every: float = 1.0) -> None:
    tick = threading.Event()
    while not condition():
        tick.wait(every)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def phase_one(url: str, work: Path, tenants: int, people: int, workers: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_STATE_URL"}
    directory = work / "tenants"
    with ExitStack() as stack:
        began = time.perf_counter()
        for index in range(tenants):
            write_tenant(directory, f"t{index:03d}", start_boxes(stack, 1000 + index, people),
                         url, env)
        setup = time.perf_counter() - began
        children = [syncer(["worker", "--tenants", str(directory), "--queue-url", url,
                            "--log-level", "warning"], env, work / f"w{n}.log")
                    for n in range(workers)]
        began = time.perf_counter()
        dispatch_once(directory, url, env)
        wait_for(lambda: not query(url, "SELECT 1 FROM procrastinate_jobs WHERE status IN "
                                   "('todo', 'doing') LIMIT 1"))
        wall = time.perf_counter() - began
        first_round = query(url, JOB_TIMES)
        # Round 2: every tenant again, now incremental (what a schedule runs all day).
        began = time.perf_counter()
        dispatch_once(directory, url, env)
        wait_for(lambda: not query(url, "SELECT 1 FROM procrastinate_jobs WHERE status IN "
                                   "('todo', 'doing') LIMIT 1"))
        wall_two = time.perf_counter() - began
        seen = {(row.lock, row.queueing_lock, row.deferred) for row in first_round}
        second_round = [row for row in query(url, JOB_TIMES)
                        if (row.lock, row.queueing_lock, row.deferred) not in seen]
        for child in children:
            child.send_signal(signal.SIGTERM)
            child.wait()
    result = {"tenants": tenants, "people": people, "workers": workers, "setup_s": setup}
    for label, rows, seconds in (("full", first_round, wall), ("incremental", second_round,
                                                               wall_two)):
        lags: dict[str, float] = {}
        first = min(row.deferred for row in rows)
        for row in rows:
            lags[row.lock] = max(lags.get(row.lock, 0.0), (row.ended - first).total_seconds())
        runtimes = [(row.ended - row.started).total_seconds() for row in rows]
        result[label] = {"jobs": len(rows), "statuses": sorted({row.status for row in rows}),
                         "wall_s": seconds, "lag_p50": percentile(list(lags.values()), 0.5),
                         "lag_p99": percentile(list(lags.values()), 0.99),
                         "lag_max": max(lags.values()), "run_p50": statistics.median(runtimes)}
    return result


def phase_two(url: str, work: Path, big: int, small: int, people: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_STATE_URL"}
    directory = work / "tenants2"
    with ExitStack() as stack:
        began = time.perf_counter()
        write_tenant(directory, "big", start_boxes(stack, 7, big), url, env, queue="large")
        world_s = time.perf_counter() - began
        large = syncer(["worker", "--tenants", str(directory), "--queue-url", url, "--queue",
                        "large", "--log-level", "warning"], env, work / "large.log")
        default = syncer(["worker", "--tenants", str(directory), "--queue-url", url, "--queue",
                          "default", "--log-level", "warning"], env, work / "default.log")
        dispatch_once(directory, url, env)
        wait_for(lambda: query(url, "SELECT 1 FROM procrastinate_jobs WHERE lock = 'big' AND "
                                    "status = 'doing'"))
        for index in range(small):
            write_tenant(directory, f"s{index:02d}", start_boxes(stack, 2000 + index, people),
                         url, env)
        dispatch_once(directory, url, env)
        wait_for(lambda: not query(url, "SELECT 1 FROM procrastinate_jobs WHERE lock <> 'big' "
                                        "AND status IN ('todo', 'doing') LIMIT 1"))
        big_running = bool(query(url, "SELECT 1 FROM procrastinate_jobs WHERE lock = 'big' "
                                      "AND status = 'doing'"))
        for child in (large, default):
            child.send_signal(signal.SIGTERM)
        for child in (large, default):
            child.wait()
        rows = [row for row in query(url, JOB_TIMES) if row.lock != "big"]
    waits = [(row.started - row.deferred).total_seconds() for row in rows]
    return {"big": big, "small": small, "world_s": world_s, "big_still_running": big_running,
            "wait_p50": statistics.median(waits), "wait_max": max(waits),
            "small_jobs": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("SYNCER_TEST_POSTGRES_URL"))
    parser.add_argument("--skip-phase", type=int, choices=(1, 2))
    args = parser.parse_args()
    if not args.postgres:
        sys.exit("needs PostgreSQL: --postgres URL or SYNCER_TEST_POSTGRES_URL")
    print(f"# {platform.node()} {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with tempfile.TemporaryDirectory() as folder:
        if args.skip_phase != 1:
            with scratch_database(args.postgres) as url:
                one = phase_one(url, Path(folder), args.tenants, args.people, args.workers)
            print("| round | tenants | people each | workers | jobs | wall s | lag p50 s "
                  "| lag p99 s | lag max s | run p50 s | statuses |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for label in ("full", "incremental"):
                r = one[label]
                print(f"| {label} | {one['tenants']} | {one['people']:,} | {one['workers']} | "
                      f"{r['jobs']} | {r['wall_s']:.0f} | {r['lag_p50']:.0f} | "
                      f"{r['lag_p99']:.0f} | {r['lag_max']:.0f} | {r['run_p50']:.1f} | "
                      f"{', '.join(r['statuses'])} |")
        if args.skip_phase != 2:
            with scratch_database(args.postgres) as url:
                two = phase_two(url, Path(folder), args.big, args.small, args.people)
            print("| big tenant people | small tenants | small jobs | wait p50 s | wait max s "
                  "| big still running at the end |")
            print("|---|---|---|---|---|---|")
            print(f"| {two['big']:,} | {two['small']} | {two['small_jobs']} | "
                  f"{two['wait_p50']:.2f} | {two['wait_max']:.2f} | {two['big_still_running']} |")


if __name__ == "__main__":
    main()
