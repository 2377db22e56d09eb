"""A resumable full sync of many people, killed half way (issue 18 item 8).

    nice python -m bench.bench_million --people 1000000

The sandboxes run in this process (rate limits on, as bench_sync.py); the sync is a
`syncer sync --once` child on a SQLite state, so its memory and CPU are syncer's own. The
first child is SIGKILLed once the state shows about `--kill-at` of the people pages
committed by the full pull (the pages in its `full_pulls` marks against the pages a full
pull reads: HubSpot's 100-contact pages are nearly all of them); a second child is started
on the same state and runs to the end. Reported per child: wall, CPU (RUSAGE_CHILDREN),
peak RSS (the child's VmHWM: read from /proc/<pid>/status while it runs and, at its exit,
by the child itself, since a child's ru_maxrss counts the parent's memory at the fork), the
pages it requested, and for the restart the committed pages it requested again (the bar:
0). Then the state's size. A line of progress is printed every `--every` seconds, so a run
that cannot finish still says how far it got.

With `--kill-in deciding` the kill comes once the full sync's deciding mark (its
`full_decides` row) counts about `--kill-at` of `--people`; the restart's `last_run`
says how many people it decided again, and every page counts as committed.

With `--kill-in activities` the kill comes once about `--kill-at` of HubSpot's events pages
(the bulk of a full sync's activity requests: 2.6 events a person, 1,000 a page) are
committed by the full sync's activities pull (`activity_pages` of its mark), and the
committed pages requested again are counted over those events pages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from bench.bench_sync import last_run, write_config
from bench.page_log import PageLog, activity_page_key
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.store.full_pulls import full_decides, full_pulls

#: HubSpot contacts and Salesforce Leads + Contacts per person of the sandbox world (6,496
#: and 6,452 for 10,000 people), to know how many pages a full pull reads
SHARE = {"hubspot": 0.6496, "salesforce": 0.6452}
#: records per page: HubSpot's list, Salesforce's REST query (a Bulk result set is 50,000,
#: and Salesforce's pages are few either way)
PAGE = {"hubspot": 100, "salesforce": 2000}
CONNECTORS = ("hubspot", "salesforce")
#: HubSpot events per person of the sandbox world, and per events page
EVENTS_PER_PERSON, EVENTS_PAGE = 2.6, 1000

#: the child runs the command line and, at its exit, copies its own /proc status out
CHILD = ("import atexit, shutil, sys\n"
         "out = sys.argv.pop(1)\n"
         "atexit.register(lambda: shutil.copyfile('/proc/self/status', out))\n"
         "from syncer.cli.main import main\n"
         "sys.exit(main())\n")


@dataclass
class Child:
    """One sync child's figures."""

    name: str
    exit: int | None = None
    wall: float = 0.0
    cpu: float = 0.0
    peak_mb: float = 0.0
    pages: dict[str, int] = field(default_factory=dict)
    committed: dict[str, dict[str, object]] = field(default_factory=dict)
    activity_pages: int = 0
    reread: int | None = None
    status: str | None = None


def marks(state: Path) -> dict[str, dict[str, object]]:
    """Each connector's full pull mark as committed (empty while none, or the file is busy)."""
    engine = create_engine(f"sqlite:///{state}")
    try:
        with engine.connect() as connection:
            return {row.connector: {"pages": row.pages, "records": row.records,
                                    "position": row.position, "pulled": bool(row.pulled),
                                    "activity_pages": row.activity_pages or 0,
                                    "activities": row.activities or 0,
                                    "activities_done": bool(row.activities_done)}
                    for row in connection.execute(select(full_pulls))}
    except OperationalError:
        return {}
    finally:
        engine.dispose()


def people_decided(state: Path) -> int:
    """How many people the full sync's deciding mark counts (0 while none, or busy)."""
    engine = create_engine(f"sqlite:///{state}")
    try:
        with engine.connect() as connection:
            return max(connection.execute(select(full_decides.c.people)).scalars(),
                       default=0)
    except OperationalError:
        return 0
    finally:
        engine.dispose()


def vm_hwm_mb(status_text: str) -> float:
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""


def run_child(child: Child, config: Path, as_of: datetime, state: Path, folder: Path, *,
              kill_at_pages: int | None, every: float, counted: str = "pages") -> Child:
    """Run one sync child to its end, or SIGKILL it once `kill_at_pages` pages of the full
    pull are committed (`counted`: "pages" of people, or HubSpot's "activity_pages"), or
    once its deciding mark counts that many people ("decided")."""
    exit_status = folder / f"{child.name}.status"
    exit_status.unlink(missing_ok=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = last_print = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(exit_status), "sync", "--once", "--as-of",
         as_of.isoformat(), "--config", str(config)],
        stdout=None if os.environ.get("BENCH_LOG_LEVEL") else subprocess.DEVNULL)
    while process.poll() is None:
        child.peak_mb = max(child.peak_mb, vm_hwm_mb(read_status(process.pid)))
        now = marks(state) if kill_at_pages is not None or \
            time.monotonic() - last_print >= every else {}
        if counted == "pages":
            committed = sum(int(str(m["pages"])) for m in now.values())
        elif counted == "decided":
            committed = people_decided(state) if kill_at_pages is not None else 0
        else:
            committed = int(str(now.get("hubspot", {}).get("activity_pages", 0)))
        if time.monotonic() - last_print >= every:
            last_print = time.monotonic()
            print(f"  {child.name}: {time.monotonic() - started:.0f} s, peak RSS "
                  f"{child.peak_mb:.0f} MB, full pull committed {now}", flush=True)
        if kill_at_pages is not None and committed >= kill_at_pages:
            child.committed = now
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.5)
    child.exit = process.wait()
    child.wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child.cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    if exit_status.exists():
        child.peak_mb = max(child.peak_mb, vm_hwm_mb(exit_status.read_text()))
    if kill_at_pages is not None:
        child.committed = marks(state)  # what the state holds after the kill
    return child


def split_pages(keys: list[str]) -> dict[str, list[str]]:
    return {"hubspot": [k for k in keys if k.startswith(("hubspot", "events"))],
            "salesforce": [k for k in keys if not k.startswith(("hubspot", "events"))]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-at", type=float, default=0.5,
                        help="share of the people pages committed when the kill comes")
    parser.add_argument("--kill-in", choices=("people", "activities", "deciding"),
                        default="people", help="kill in the people pages, in HubSpot's "
                        "events pages, or while deciding (--kill-at: share of the people)")
    parser.add_argument("--folder", help="keep the state here (default: a temporary folder)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between progress")
    parser.add_argument("--out", help="write the figures as JSON here too")
    args = parser.parse_args()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    world = World(args.seed, args.people, now)
    log = PageLog(key=activity_page_key) if args.kill_in == "activities" else PageLog()
    hubspot, salesforce = HubSpotSandbox(world), SalesforceSandbox(world)
    for sandbox in (hubspot, salesforce):
        log.attach(sandbox)
        sandbox.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(args.folder or tmp)
            folder.mkdir(parents=True, exist_ok=True)
            figures = bench(folder, hubspot, salesforce, log, now, args)
            print(json.dumps(figures, indent=1, default=str), flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(figures, indent=1, default=str))
    finally:
        hubspot.stop()
        salesforce.stop()


def bench(folder: Path, hubspot: HubSpotSandbox, salesforce: SalesforceSandbox,
          log: PageLog, now: datetime, args: argparse.Namespace) -> dict[str, object]:
    config = write_config(folder, hubspot, salesforce)
    state = folder / "state.db"
    counted = {"people": "pages", "activities": "activity_pages",
               "deciding": "decided"}[args.kill_in]
    pages = sum(-(-int(SHARE[n] * args.people) // PAGE[n]) for n in CONNECTORS) \
        if counted == "pages" else args.people if counted == "decided" \
        else -(-int(EVENTS_PER_PERSON * args.people) // EVENTS_PAGE)
    target = max(1, int(args.kill_at * pages))
    print(f"{args.people} people, about {pages} {args.kill_in} pages; killing the first "
          f"sync at {target} committed pages", flush=True)
    killed = run_child(Child("killed"), config, now, state, folder,
                       kill_at_pages=target, every=args.every, counted=counted)
    first = split_pages(log.pages())
    killed.pages = {name: len(keys) for name, keys in first.items()}
    print(f"killed: {asdict(killed)}", flush=True)
    restart_from = log.mark()
    restarted = run_child(Child("restarted"), config, now, state, folder,
                          kill_at_pages=None, every=args.every)
    second = split_pages(log.pages(restart_from))
    restarted.pages = {name: len(keys) for name, keys in second.items()}
    committed = {name: set(first[name][:int(str(killed.committed.get(name, {}).get(
        counted, 0)))]) for name in CONNECTORS} if counted != "decided" \
        else {name: set(first[name]) for name in CONNECTORS}  # every page was committed
    killed.activity_pages = restarted.activity_pages = 0
    if counted == "activity_pages":
        killed.activity_pages, restarted.activity_pages = len(first["hubspot"]), \
            len(second["hubspot"])
    restarted.reread = sum(len(committed[name] & set(second[name])) for name in CONNECTORS)
    summary = last_run(state)
    restarted.status = str(summary["status"])
    size = sum(p.stat().st_size for p in folder.glob("state.db*"))
    return {"people": args.people, "killed": asdict(killed), "restarted": asdict(restarted),
            "last_run": summary, "state_mb": round(size / 2**20, 1),
            "at": now.isoformat()}


if __name__ == "__main__":
    main()
