"""Benchmark of the sandbox CRMs at scale: `syncer sandbox --contacts 1000000 --seed 1`.

    /tmp/venv/bin/python -m bench.bench_sandbox [--contacts N] [--seed S] [--activities A]

Starts the command as a real process and measures, from the outside:
- how long until it prints its endpoints and `ready` (the world is lazy: nothing is
  generated before the first request);
- how long the first answers take through the real clients (a HubSpot contacts page; a
  Salesforce sign-in and the first page of every Lead, which counts them all);
- how long until the activity index is built (`index_ready`: the one pass over every
  person and activity, in the background, in up to two worker processes);
- the time of a few pages of each kind a sync reads (contacts, events, Leads, Contacts,
  CampaignMembers and Tasks since 200 days ago), once the index is ready;
- the resident memory of the sandbox process then, its peak, and the peak of the index
  workers (polled from /proc every 0.2 s).
Prints a table; the figures of record are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parents[1]


def memory_kib(pid: int, field: str) -> int:
    """VmRSS or VmHWM of a process, in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.update(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass
    return found


class ChildPeak(threading.Thread):
    """Polls the peak memory of the sandbox's worker processes while they live."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peaks: dict[int, int] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            for child in children(self.pid):
                self.peaks[child] = max(self.peaks.get(child, 0), memory_kib(child, "VmHWM"))


class Lines(threading.Thread):
    """Reads the sandbox's JSON lines into a queue (select() on a buffered text pipe would
    miss lines already read ahead into the buffer)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def run(self) -> None:
        for line in self.stream:
            self.queue.put(json.loads(line))
        self.queue.put(None)

    def until(self, event: str, deadline: float) -> tuple[list[dict[str, Any]], float]:
        lines: list[dict[str, Any]] = []
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise SystemExit(f"no '{event}' from the sandbox in time (got {lines})")
            lines.append(line)
            if line.get("event") == event:
                return lines, time.monotonic()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began


def run(contacts: int, seed: int, activities: float) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "syncer.cli", "sandbox", "--contacts", str(contacts),
         "--seed", str(seed), "--activities", str(activities)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak = ChildPeak(process.pid)
    peak.start()
    assert process.stdout is not None
    output = Lines(process.stdout)
    output.start()
    try:
        lines, ready_at = output.until("ready", began + 120)
        rows.append(("start to `ready` (s)", f"{ready_at - began:.2f}"))
        rows.append(("RSS at ready (MiB)", f"{memory_kib(process.pid, 'VmRSS') / 1024:.0f}"))
        hubspot = next(line for line in lines if line.get("kind") == "hubspot")
        salesforce = next(line for line in lines if line.get("kind") == "salesforce")
        hs = requests.Session()
        hs.headers["Authorization"] = "Bearer " + hubspot["credentials"]["access_token"]
        contacts_url = hubspot["base_url"] + "/crm/v3/objects/contacts"
        page, seconds = timed(lambda: hs.get(contacts_url, params={"limit": 100}).json())
        rows.append(("first HubSpot contacts page (s)", f"{seconds:.3f}"))
        sf = requests.Session()
        sf.verify, sf.trust_env = salesforce["ca_file"], False
        token = sf.post(salesforce["base_url"] + "/services/oauth2/token",
                        data={"grant_type": "refresh_token", **salesforce["credentials"]})
        sf.headers["Authorization"] = "Bearer " + token.json()["access_token"]
        query_url = salesforce["base_url"] + "/services/data/v59.0/query"
        lead_query = ("SELECT Id, Email, FirstName, LastName, Title, Company, Industry, "
                      "NumberOfEmployees, Country, OwnerId, SystemModstamp FROM Lead "
                      "WHERE IsConverted = false")
        leads, seconds = timed(lambda: sf.get(query_url, params={"q": lead_query}).json())
        rows.append((f"first Salesforce Lead page, totalSize {leads['totalSize']:,} (s)",
                     f"{seconds:.2f}"))
        _, index_at = output.until("index_ready", began + 300)
        rows.append(("start to activity index built (s)", f"{index_at - began:.1f}"))
        since = (datetime.now(timezone.utc) - timedelta(days=200)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        after = page["paging"]["next"]["after"]

        def contact_pages() -> None:
            nonlocal after
            for _ in range(5):
                got = hs.get(contacts_url, params={"limit": 100, "after": after}).json()
                after = got["paging"]["next"]["after"]
        rows.append(("5 more HubSpot contacts pages of 100 (s)",
                     f"{timed(contact_pages)[1]:.3f}"))
        events_url = hubspot["base_url"] + "/events/v3/events/"

        def event_pages() -> None:
            token: str | None = None
            for _ in range(5):
                params = {"objectType": "contact", "occurredAfter": since,
                          "sort": "ASCENDING", "limit": 100, **({"after": token} if token
                                                               else {})}
                token = hs.get(events_url, params=params).json()["paging"]["next"]["after"]
        rows.append(("5 HubSpot events pages of 100 (s)", f"{timed(event_pages)[1]:.3f}"))
        rows.append(("next Salesforce Lead page of 2,000 (s)", f"{timed(lambda: sf.get(salesforce['base_url'] + leads['nextRecordsUrl']).json())[1]:.2f}"))  # noqa: E501
        contact_query = ("SELECT Id, Email, Account.Name, Account.Industry, MailingCountry, "
                         "OwnerId FROM Contact")
        found, seconds = timed(lambda: sf.get(query_url, params={"q": contact_query}).json())
        rows.append((f"first Salesforce Contact page, totalSize {found['totalSize']:,} (s)",
                     f"{seconds:.2f}"))
        for table, extra in (("CampaignMember", ""), ("Task", " AND WhoId != null")):
            fields = ("Id, LeadId, ContactId, Status, CreatedDate, Campaign.Name"
                      if table == "CampaignMember" else "Id, WhoId, Subject, Type, CreatedDate")
            query = (f"SELECT {fields} FROM {table} WHERE CreatedDate >= {since}{extra} "
                     "ORDER BY CreatedDate, Id")
            first, seconds = timed(lambda q=query: sf.get(query_url, params={"q": q}).json())
            rows.append((f"first {table} page since 200 days, totalSize "
                         f"{first['totalSize']:,} (s)", f"{seconds:.2f}"))
            _, seconds = timed(lambda f=first: sf.get(salesforce["base_url"]
                                                      + f["nextRecordsUrl"]).json())
            rows.append((f"next {table} page of 2,000 (s)", f"{seconds:.2f}"))
        rows.append(("sandbox RSS after those pages (MiB)",
                     f"{memory_kib(process.pid, 'VmRSS') / 1024:.0f}"))
        rows.append(("sandbox peak RSS (MiB)",
                     f"{memory_kib(process.pid, 'VmHWM') / 1024:.0f}"))
        workers = sorted(peak.peaks.values())
        rows.append(("index worker peak RSS each (MiB)",
                     ", ".join(f"{kib / 1024:.0f}" for kib in workers) or "none"))
        process.send_signal(2)
        output.until("stopped", time.monotonic() + 30)
        rows.append(("exit code after SIGINT", str(process.wait(timeout=30))))
    finally:
        peak.stopping.set()
        if process.poll() is None:
            process.kill()
            process.wait()
        output.join(timeout=5)
        process.stdout.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--activities", type=float, default=10.0)
    args = parser.parse_args()
    rows = run(args.contacts, args.seed, args.activities)
    print(f"syncer sandbox --contacts {args.contacts:,} --seed {args.seed} --activities "
          f"{args.activities:g}   ({platform.python_version()}, {os.cpu_count()} cores, "
          f"{datetime.now(timezone.utc):%Y-%m-%d})")
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"| {'-' * width} | ----- |")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
