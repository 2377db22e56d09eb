"""Benchmark: pulling Salesforce Accounts (issue 20) through the production connector.

    .venv/bin/python -m bench.bench_salesforce_accounts [--accounts 2000,20000] [--seed 3]

Builds a world with about `--accounts` companies (one Account each;
`salesforce_accounts=True`: a web domain, a rep as owner, a revenue), serves it from the
sandbox (in this process, over HTTPS) and reads every Account three ways: a full pull by
REST query (pages of 2,000; the threshold raised), a full pull by a Bulk 2.0 job
(`bulk_query_threshold` 0) and an incremental pull whose cursor is older than every
Account (REST, ordered by SystemModstamp). A full pull with the default threshold (10,000)
is the first below it and the second above it (plus one REST query that only reads the
size). Prints API calls (sign-in and describe included) and wall time; figures of record:
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorSettings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ACCOUNT_WRITEBACK = ("Syncer_Account_Score__c", "Syncer_Account_Grade__c")


def queries(sandbox: SalesforceSandbox) -> int:
    """REST query calls answered so far (first pages and nextRecordsUrl pages)."""
    return sum(n for (method, route, _), n in sandbox.call_counts.items()
               if method == "GET" and route in ("query", "query/<locator>"))


def pull(sandbox: SalesforceSandbox, options: dict[str, Any],
         since: datetime | None) -> tuple[int, int, int, float]:
    """(accounts, API calls, REST queries, wall seconds) of one pull."""
    before = queries(sandbox)
    settings = ConnectorSettings(
        name="salesforce", kind="salesforce", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), account_writeback_fields=ACCOUNT_WRITEBACK,
        ca_file=sandbox.ca_file, timeout_seconds=120.0, options=options)
    started = time.perf_counter()
    with SalesforceConnector(settings) as connector:
        count = sum(len(page) for page in connector.accounts(since))
        calls = connector.api_calls
    return count, calls, queries(sandbox) - before, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="2000,20000")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python "
          f"{platform.python_version()}")
    print("| accounts | pull | API calls | of them REST queries | ceil(N/2000) | wall s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    rest = {"bulk_query_threshold": 10**9}
    bulk = {"bulk_query_threshold": 0, "bulk_poll_seconds": 0.05}
    for wanted in (int(n) for n in args.accounts.split(",")):
        world = World(seed=args.seed, size=wanted * 6, now=NOW, salesforce_accounts=True)
        with SalesforceSandbox(world) as sandbox:
            for label, options, since in (
                    ("full, REST", rest, None), ("full, Bulk 2.0", bulk, None),
                    ("incremental, REST", {}, NOW - timedelta(days=3650))):
                count, calls, asked, seconds = pull(sandbox, options, since)
                print(f"| {count:,} | {label} | {calls} | {asked} | "
                      f"{math.ceil(count / 2000)} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
