"""A fixed point after faults: the issue's SIGKILL drill, then quiet syncs.

    python -m bench.bench_fixed_point --people 20000

The sandboxes run in this process with 20% 5xx answers and bursts of 429s (Salesforce: 403
REQUEST_LIMIT_EXCEEDED); `syncer sync --once` runs in a child process that is SIGKILLed
while it waits for a random answer, `--kills` times, then runs to its end through the
faults. Faults off, two syncs follow with nothing changed in either CRM: the second must
write nothing. Prints the fields each run wrote and, for the last, what it wrote.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.bench_sync import write_config
from connectors.sandbox.faults import FaultConfig
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.store.repository import Store


class Holder:
    """Holds the `at`-th request either sandbox receives until released (see
    tests/test_kill_restart.py: a kill then lands inside the run by construction)."""

    def __init__(self, sandboxes: list[Any], at: int) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()
        self.seen = 0
        self.lock = threading.Lock()
        self.sandboxes = sandboxes
        for sandbox in sandboxes:
            original = sandbox.faults.plan

            def planned(method: str, endpoint: str, original: Any = original) -> Any:
                with self.lock:
                    self.seen += 1
                    held = self.seen == at
                if held:
                    self.reached.set()
                    self.released.wait()
                return original(method, endpoint)
            sandbox.faults.plan = planned

    def release(self) -> None:
        self.released.set()
        for sandbox in self.sandboxes:
            del sandbox.faults.plan


def sync(config: Path, as_of: datetime, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "syncer.cli", "sync", "--once", "--as-of",
                             as_of.isoformat(), "--config", str(config), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def last_run(state: Path) -> tuple[str, str, dict[str, Any]]:
    """(run id, status, stats) of the latest run."""
    store = Store.open(f"sqlite:///{state}")
    try:
        run = store.runs(limit=1)[0]
        return run.run_id, run.status, dict(run.stats)
    finally:
        store.close()


def written_by(state: Path, run_id: str) -> dict[tuple[str, str], int]:
    """(connector, field) -> fields this run wrote, from the audit log."""
    store = Store.open(f"sqlite:///{state}")
    try:
        return dict(collections.Counter(
            (str(row["connector"]), str(row["field"]))
            for row in store.audit_rows(run_id=run_id, outcome="written")))
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--kill-at", default="400,900",
                        help="kill the drill's runs at these requests (comma separated): "
                             "into the pull, the decisions and the writes")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    world = World(seed=args.seed, size=args.people, now=now)
    faults = FaultConfig(seed=args.seed, error_rate=0.2, burst_every=20, burst_length=2)
    hubspot = HubSpotSandbox(world, faults=faults)
    salesforce = SalesforceSandbox(world, faults=faults)
    hubspot.start()
    salesforce.start()
    try:
        folder = Path(tempfile.mkdtemp(prefix="bench-fixed-point-"))
        config = write_config(folder, hubspot, salesforce)
        state = folder / "state.db"
        for kill, at in enumerate(int(n) for n in args.kill_at.split(",")):
            holder = Holder([hubspot, salesforce], at)
            process = sync(config, now)
            threading.Thread(target=lambda p=process, h=holder: (p.wait(), h.reached.set()),
                             daemon=True).start()
            holder.reached.wait()
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            code = process.wait()
            holder.release()
            print(f"drill run {kill + 1}: exit {code} after {holder.seen} requests", flush=True)
        rows = []
        for label, extra in (("faulty run to the end", ()), ("faults off", ()),
                             ("quiet sync 1", ()), ("quiet sync 2", ()),
                             ("quiet sync 3, --full (everyone re-decided)", ("--full",))):
            if label == "faults off":
                for sandbox in (hubspot, salesforce):
                    sandbox.faults.config = FaultConfig()
                    sandbox.faults.stop()
                continue
            started = time.perf_counter()
            code = sync(config, now, *extra).wait()
            _, status, stats = last_run(state)
            written = stats.get("fields_written", {})
            rows.append((label, code, status, sum(written.values()), written,
                         stats.get("people"), stats.get("owners_assigned"),
                         time.perf_counter() - started))
            print(rows[-1], flush=True)
        print(f"\n{args.people:,} people, seed {args.seed}")
        print("| run | exit | status | fields written | people decided | owners assigned "
              "| wall |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
        for label, code, status, total, written, people, owners, wall in rows:
            print(f"| {label} | {code} | {status} | {total:,} {dict(written)} | {people} "
                  f"| {owners} | {wall:.0f} s |")
        print("the last run wrote:", written_by(state, last_run(state)[0]))
    finally:
        hubspot.stop()
        salesforce.stop()
        os.environ.pop("BENCH_HUBSPOT_ACCESS_TOKEN", None)


if __name__ == "__main__":
    main()
