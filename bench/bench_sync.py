"""Full and incremental sync against sandboxes that enforce the documented limits.

    python bench/bench_sync.py --people 100000

The sandboxes run in this process (HubSpot at 190 requests per 10 s, Salesforce
collections of 200); each sync runs as `syncer sync --once` in a child process, so its wall
time and peak memory are syncer's own. Reported per run: API calls against the minimum
possible (every read and write at the API's largest page or batch), wall time against the
minimum HubSpot's rate limit allows, 429s received, peak RSS. The incremental run follows
after 1% of the people were edited in each CRM.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bench.sandbox_config import example_config, point_at_sandboxes
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.settings import FaultConfig
from connectors.sandbox.world import World
from syncer.store.repository import Store

HUBSPOT_PER_SECOND = 19.0  # 190 requests per rolling 10 s


def write_config(folder: Path, hubspot: HubSpotSandbox, salesforce: SalesforceSandbox) -> Path:
    data = example_config(folder)
    data["log_level"] = os.environ.get("BENCH_LOG_LEVEL", "warning")
    data.pop("health", None)
    point_at_sandboxes(data, {"hubspot": hubspot, "salesforce": salesforce})
    path = folder / "syncer.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_sync(config: Path, as_of: datetime, profile: str | None = None
             ) -> tuple[float, float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds, the sandboxes' CPU seconds) of one
    `syncer sync --once` child process.

    The sandboxes run in this process, so the child's CPU time (user + system, from
    RUSAGE_CHILDREN) is syncer's own: on a shared machine it is the figure, wall time is
    noise. With `profile` the child runs under a profiler (its CPU then includes the
    profiler's): cProfile for a `.prof` file, else py-spy's sampler (collapsed stacks, which
    distort less than cProfile's per-call cost: `.venv/bin/pip install py-spy`)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    command = [sys.executable]
    if profile and profile.endswith(".prof"):
        command += ["-m", "cProfile", "-o", profile]
    elif profile:
        command = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                   "--rate", "250", "--output", profile, "--", *command]
    subprocess.run([*command, "-m", "syncer.cli", "sync", "--once", "--as-of",
                    as_of.isoformat(), "--config", str(config)], check=False,
                   stdout=None if os.environ.get("BENCH_LOG_LEVEL") else subprocess.DEVNULL)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    served = resource.getrusage(resource.RUSAGE_SELF)
    sandboxes = (served.ru_utime + served.ru_stime) - (own.ru_utime + own.ru_stime)
    return wall, max(after.ru_maxrss, usage.ru_maxrss) / 1024, cpu, sandboxes


def state_mb(folder: Path) -> float:
    """The SQLite state's size on disk (the database and its WAL), in MB."""
    return sum(p.stat().st_size for p in folder.glob("state.db*")) / 2**20


def last_run(state: Path) -> dict[str, Any]:
    store = Store.open(f"sqlite:///{state}")
    try:
        run = store.runs(limit=1)[0]
        return {"status": run.status, **dict(run.stats)}
    finally:
        store.close()


def minimum_calls(stats: dict[str, Any], hubspot_events: int, salesforce_rows: dict[str, int]
                  ) -> dict[str, int]:
    """Reads and writes at the largest page / batch each API allows, plus the fixed calls
    (owners, and for Salesforce sign-in, describe of Lead and Contact, users)."""
    pulled = stats.get("records_pulled", {})
    written = stats.get("records_written", {})
    hubspot = (math.ceil(pulled.get("hubspot", 0) / 100) + math.ceil(hubspot_events / 1000)
               + math.ceil(written.get("hubspot", 0) / 100) + 2)
    salesforce = (sum(math.ceil(n / 2000) for n in salesforce_rows.values())
                  + math.ceil(written.get("salesforce", 0) / 200) + 4)
    return {"hubspot": max(hubspot, 1), "salesforce": max(salesforce, 1)}


def report(name: str, wall: float, peak: float, cpu: tuple[float, float], stats: dict[str, Any],
           minimum: dict[str, int], people: int) -> list[str]:
    calls = stats.get("api_calls", {})
    limited = stats.get("api_rate_limited", {})
    hub_min_wall = minimum["hubspot"] / HUBSPOT_PER_SECOND
    lines = [f"{name}: status {stats['status']}, wall {wall:.1f} s "
             f"(HubSpot rate-limit minimum {hub_min_wall:.1f} s: {wall / hub_min_wall:.2f}x), "
             f"peak RSS {peak:.0f} MB, 429s {sum(limited.values())}",
             f"  syncer CPU {cpu[0]:.1f} s = {1000 * cpu[0] / people:.2f} ms per person "
             f"({people} people); the sandboxes' CPU (this process) {cpu[1]:.1f} s; both "
             f"together on {os.cpu_count()} cores: at least {sum(cpu) / (os.cpu_count() or 1):.1f} "
             f"s of wall"]
    for crm in ("hubspot", "salesforce"):
        used = calls.get(crm, 0)
        lines.append(f"  {crm:<10} calls {used:>6} / minimum {minimum[crm]:>6} = "
                     f"{used / minimum[crm]:.3f}x; pulled {stats['records_pulled'].get(crm, 0)}"
                     f" records, wrote {stats['records_written'].get(crm, 0)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--full-only", action="store_true", help="skip the incremental run")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="added before every sandbox answer: a CRM's round trip over "
                        "the internet (the sandboxes answer in microseconds on 127.0.0.1)")
    parser.add_argument("--profile", help="profile the full sync into this file: cProfile stats "
                        "(.prof) or py-spy collapsed stacks (any other name)")
    args = parser.parse_args()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    started = time.monotonic()
    world = World(args.seed, args.people, now)
    hubspot, salesforce = HubSpotSandbox(world), SalesforceSandbox(world)
    if args.latency_ms:
        for sandbox in (hubspot, salesforce):
            sandbox.faults.config = FaultConfig(latency_ms=args.latency_ms)
    hubspot.start()
    salesforce.start()
    print(f"sandboxes for {args.people} people ready in {time.monotonic() - started:.1f} s"
          + (f", {args.latency_ms:g} ms added to every answer" if args.latency_ms else ""),
          flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = write_config(folder, hubspot, salesforce)
            wall, peak, *cpu = run_sync(config, now, args.profile)
            stats = last_run(folder / "state.db")
            events = stats["activities_pulled"].get("hubspot", 0)
            rows = {"people": stats["records_pulled"].get("salesforce", 0),
                    "activities": stats["activities_pulled"].get("salesforce", 0)}
            lines = report("full sync", wall, peak, (cpu[0], cpu[1]), stats,
                           minimum_calls(stats, events, rows), args.people)
            print("\n".join(lines), flush=True)
            print(f"  state {state_mb(folder):.1f} MB", flush=True)
            if args.full_only:
                return

            rng = random.Random(args.seed)
            hub_records = hubspot.records()
            sf_records = salesforce.records()
            for record in rng.sample(hub_records, max(1, len(hub_records) // 100)):
                hubspot.edit(str(record["id"]), "jobtitle", "VP Marketing")
            for record in rng.sample(sf_records, max(1, len(sf_records) // 100)):
                salesforce.edit(str(record["Id"]), "Title", "VP Marketing")
            time.sleep(1.1)
            wall2, peak2, *cpu2 = run_sync(config, now)
            stats2 = last_run(folder / "state.db")
            rows2 = {"people": stats2["records_pulled"].get("salesforce", 0),
                     "activities": stats2["activities_pulled"].get("salesforce", 0)}
            lines2 = report("incremental sync after 1% changed", wall2, peak2, (cpu2[0], cpu2[1]),
                            stats2,
                            minimum_calls(stats2, stats2["activities_pulled"].get("hubspot", 0),
                                          rows2), args.people)
            print("\n".join(lines2), flush=True)
            print(f"  state {state_mb(folder):.1f} MB", flush=True)
    finally:
        hubspot.stop()
        salesforce.stop()


if __name__ == "__main__":
    main()
