"""Benchmark: a full Salesforce pull by REST query against one by Bulk API 2.0 query jobs.

    .venv/bin/python -m bench.bench_bulk2 [--people 20000] [--latency 0,0.1] [--seed 3]

Builds a world whose Salesforce org holds about `--people` Leads and Contacts, serves it
from the sandbox (in this process, over HTTPS), and pulls every person through the
production connector twice per latency: by REST query (pages of 2,000) and by Bulk 2.0
(`bulk_query_threshold` 0, result sets of 50,000, polls from 0.5 s doubling). `latency`
is added by the sandbox to every answer (a round trip to a real org). Prints a table of
API calls and wall time; the figures of record are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import datetime, timezone
from typing import Any

import structlog

from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorSettings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
WRITEBACK = ("Syncer_Stage__c", "Syncer_Score__c", "Syncer_Fit_Grade__c",
             "Syncer_Reasons__c", "OwnerId")


def world_for(people: int, seed: int) -> World:
    """A world whose Salesforce share is about `people` (measured on a small sample)."""
    sample = World(seed=seed, size=2_000, now=NOW)
    share = sum(1 for p in sample.people() if p.in_salesforce) / 2_000
    return World(seed=seed, size=round(people / share), now=NOW)


def pull(sandbox: SalesforceSandbox, options: dict[str, Any]) -> tuple[int, int, float]:
    """(people, API calls, wall seconds) of one full pull."""
    settings = ConnectorSettings(
        name="salesforce", kind="salesforce", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), writeback_fields=WRITEBACK,
        ca_file=sandbox.ca_file, timeout_seconds=120.0, options=options)
    started = time.perf_counter()
    with SalesforceConnector(settings) as connector:
        count = sum(len(page) for page in connector.people())
        calls = connector.api_calls
    return count, calls, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--latency", default="0,0.1",
                        help="seconds added to every answer, comma-separated")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    world = world_for(args.people, args.seed)
    print(f"# {platform.python_version()}, {os.cpu_count()} cores, world of {world.size} "
          f"people (seed {args.seed})")
    print("| latency | path | people | API calls | wall | jobs |")
    print("| ---: | --- | ---: | ---: | ---: | --- |")
    for latency in (float(x) for x in args.latency.split(",")):
        for path, options in (("REST query", {"bulk_query_threshold": 10 ** 9}),
                              ("Bulk API 2.0", {"bulk_query_threshold": 0})):
            with SalesforceSandbox(world, latency_seconds=latency) as sandbox:
                people, calls, wall = pull(sandbox, options)
                jobs = list(sandbox.bulk.jobs.values())
                assert all(job.deleted for job in jobs)
            closed = f"{len(jobs)}, all deleted" if jobs else "-"
            print(f"| {latency * 1000:.0f} ms | {path} | {people:,} | {calls} | "
                  f"{wall:.1f} s | {closed} |")


if __name__ == "__main__":
    main()
