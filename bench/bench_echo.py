"""Benchmark of the echo of syncer's own writes and of the reconciliation sweep.

    python -m bench.bench_echo [--people 10000] [--seed 7] [--late] [--accounts]

Both sandbox CRMs serve one synthetic world in this process (their default rate limits
on); syncer syncs it into a fresh SQLite state with the example config:
1. a full sync (writes nearly every record),
2. the first incremental right after it (nothing changed in either CRM),
3. a quiet incremental (again nothing changed),
4. with --late: one HubSpot contact and one Salesforce Lead are edited with a stamp 30
   minutes behind syncer's cursor (with --accounts also one HubSpot company and one
   Salesforce Account, 30 minutes behind the accounts cursor), a sync at the same time
   (no sweep due) and one a day later (the sweeps are due) show whether they are found;
   the accounts' sweep prints its calls, companies read and found per CRM.
With --accounts the model gets an `accounts:` section and both connectors
`account_fields: {}` (bench/bench_accounts.py): every world company is a HubSpot company
with its contacts associated and a Salesforce Account whose Website is the company's
domain, and `syncer setup` makes the account fields first; the runs then also decide
companies and write their score, grade, MQA flag and reasons back.
For each run it prints the requests each sandbox answered, by CRM and route, and the
records the pull read back. The figures of record are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from bench.bench_accounts import hubspot_companies
from bench.bench_accounts import sandbox_config as config
from connectors.sandbox import build_sandbox
from connectors.sandbox.hubspot.company_controls import edit_company
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.seed import account_id
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli.commands.setup import set_up_all
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Sandbox
from syncer.run.pipeline import RunSummary, run_sync
from syncer.store import accounts as account_store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def with_companies(world: World, hubspot: Sandbox, salesforce: Sandbox,
                   loaded: LoadedConfig) -> None:
    """Every world company as a HubSpot company (contacts associated) and a Salesforce
    Account at its domain, and the account fields made (`syncer setup`)."""
    assert isinstance(hubspot, HubSpotSandbox) and isinstance(salesforce, SalesforceSandbox)
    hubspot_companies(world, hubspot)
    for i in range(world.companies):
        salesforce.edit(account_id(i), "Website", f"https://{world.company(i).domain}")
    with Runtime(loaded) as runtime:
        set_up_all(loaded, runtime, dry_run=False)


def requests_by_route(hubspot: Sandbox, salesforce: Sandbox) -> Counter[str]:
    seen: Counter[str] = Counter()
    for crm, sandbox in (("hubspot", hubspot), ("salesforce", salesforce)):
        for (method, rule, _status), n in sandbox.call_counts.items():  # type: ignore[attr-defined]
            seen[f"{crm} {method} {rule}"] += n
    return seen


def sync(loaded: LoadedConfig, hubspot: Sandbox, salesforce: Sandbox,
         now: datetime, **options: Any) -> tuple[RunSummary, Counter[str], dict[str, int], float]:
    """One run: its summary, requests by route, records read back per CRM, seconds."""
    before = requests_by_route(hubspot, salesforce)
    started = time.perf_counter()
    with Runtime(loaded) as runtime, capture_logs() as logs:
        summary = run_sync(loaded, runtime.require_store(), runtime.connectors,
                           runtime.model, now, **options)
    spent = requests_by_route(hubspot, salesforce) - before
    read = Counter({e["connector"]: int(e.get("read", e.get("records", 0)))
                    for e in logs if e.get("event") == "pull.done"})  # before: records
    for event in logs:
        if event.get("event") == "sweep.done":
            read[f"{event['connector']} sweep"] += int(event.get("read", 0))
        if event.get("event") in ("accounts.sweep.done", "accounts.sweep.paused"):
            for figure in ("calls", "read", "found"):
                read[f"{event['connector']} accounts sweep {figure}"] += int(event[figure])
        if event.get("event") == "accounts.pulled":  # before: no `read`, only the changed
            read[f"{event['connector']} accounts"] += int(event.get("read",
                                                                    event.get("accounts", 0)))
            read[f"{event['connector']} accounts changed"] += int(event.get("accounts", 0))
    return summary, spent, dict(read), time.perf_counter() - started


def report(label: str, result: tuple[RunSummary, Counter[str], dict[str, int], float]) -> None:
    summary, spent, read, seconds = result
    for crm in ("hubspot", "salesforce"):
        routes = {k.removeprefix(f"{crm} "): v for k, v in sorted(spent.items())
                  if k.startswith(f"{crm} ")}
        total = sum(routes.values())
        people = read.get(crm, 0) + read.get(f"{crm} sweep", 0)
        companies = (f" + {read[f'{crm} accounts']:,} accounts "
                     f"({read[f'{crm} accounts changed']:,} changed)"
                     if f"{crm} accounts" in read else "")
        if f"{crm} accounts sweep read" in read:
            companies += (f" + {read[f'{crm} accounts sweep read']:,} swept in "
                          f"{read[f'{crm} accounts sweep calls']} calls "
                          f"({read[f'{crm} accounts sweep found']} found)")
        print(f"| {label} | {crm} | {total} | {people:,}{companies} "
              f"| {summary.records_pulled.get(crm, 0):,} "
              f"| {summary.fields_written.get(crm, 0):,} "
              f"| {seconds:.1f} | {', '.join(f'{k} {v}' for k, v in routes.items())} |")


def late_edits(loaded: LoadedConfig, hubspot: Sandbox, salesforce: Sandbox) -> None:
    """One contact and one Lead edited with a stamp 30 minutes behind the cursor."""
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        cursors = {name: store.cursor(name, "people") for name in ("hubspot", "salesforce")}
    contact = next(r for r in hubspot.records() if r.get("jobtitle") != "VP Sales")
    hubspot.edit(str(contact["id"]), "jobtitle", "VP Sales")
    hubspot.state.restamp(str(contact["id"]),  # type: ignore[attr-defined]
                          cursors["hubspot"] - timedelta(minutes=30))  # type: ignore[operator]
    lead = next(r for r in salesforce.records()
                if str(r["Id"]).startswith("00Q") and r.get("Title") != "VP Sales")
    salesforce.edit(str(lead["Id"]), "Title", "VP Sales")
    salesforce.org.restamp(str(lead["Id"]),  # type: ignore[attr-defined]
                           cursors["salesforce"] - timedelta(minutes=30))  # type: ignore[operator]


def late_company_edits(loaded: LoadedConfig, hubspot: Sandbox, salesforce: Sandbox) -> None:
    """One HubSpot company and one Salesforce Account (the middle ones by id) edited with
    a stamp 30 minutes behind the accounts cursor: only the accounts' sweep finds them."""
    assert isinstance(hubspot, HubSpotSandbox) and isinstance(salesforce, SalesforceSandbox)
    behind: dict[str, datetime] = {}
    with Runtime(loaded) as runtime:
        for name in ("hubspot", "salesforce"):
            cursor = runtime.require_store().cursor(name, account_store.ACCOUNTS_STREAM)
            assert cursor is not None, "a full sync with accounts on comes first"
            behind[name] = cursor - timedelta(minutes=30)
    companies = sorted(hubspot.api.objects.companies.live(), key=lambda c: int(c.id))
    middle = len(companies) // 2
    edit_company(hubspot, {"id": companies[middle].id, "field": "industry",
                           "value": "Late Industry", "stamp": behind["hubspot"].isoformat()})
    salesforce.edit(account_id(middle), "Industry", "Late Industry")
    salesforce.org.restamp(account_id(middle), behind["salesforce"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--late", action="store_true",
                        help="also edit two records 30 minutes behind the cursor and sweep")
    parser.add_argument("--accounts", action="store_true",
                        help="turn accounts on: companies decided and written back")
    args = parser.parse_args()
    world = World(seed=args.seed, size=args.people, now=NOW)
    hubspot, salesforce = build_sandbox("hubspot", world), build_sandbox("salesforce", world)
    hubspot.start()
    salesforce.start()
    print(f"# {args.people:,} people, seed {args.seed}, accounts "
          f"{'on' if args.accounts else 'off'}; {platform.python_version()}, "
          f"{os.cpu_count()} cores, {datetime.now(timezone.utc):%Y-%m-%d}")
    print("| run | CRM | requests | records read back | records stored | fields written "
          "| seconds | requests by route |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    try:
        with tempfile.TemporaryDirectory() as folder:
            loaded = config(hubspot, salesforce, Path(folder), args.accounts)
            if args.accounts:
                with_companies(world, hubspot, salesforce, loaded)
            report("full sync", sync(loaded, hubspot, salesforce, NOW))
            first = sync(loaded, hubspot, salesforce, NOW)
            report("first incremental", first)
            quiet = sync(loaded, hubspot, salesforce, NOW)
            report("quiet incremental", quiet)
            for crm in ("hubspot", "salesforce"):
                calls = [sum(v for k, v in r[1].items() if k.startswith(crm))
                         for r in (first, quiet)]
                print(f"first / quiet, {crm}: {calls[0]} / {calls[1]} = "
                      f"{calls[0] / max(calls[1], 1):.2f}")
            if args.late:
                late_edits(loaded, hubspot, salesforce)
                if args.accounts:
                    late_company_edits(loaded, hubspot, salesforce)
                report("late edits, same day", sync(loaded, hubspot, salesforce, NOW))
                report("late edits, a day on (sweep)",
                       sync(loaded, hubspot, salesforce, NOW + timedelta(hours=25)))
    finally:
        hubspot.stop()
        salesforce.stop()


if __name__ == "__main__":
    main()
