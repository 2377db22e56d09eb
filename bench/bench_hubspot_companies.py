"""Benchmark of the HubSpot company pull (issue 20, item 3): requests, wall and CPU.

    python -m bench.bench_hubspot_companies [--companies 2000 20000] [--people 2000]

For each size, a HubSpot sandbox (default rate limits: search 5 per second, 190 requests
per 10 s) holds that many companies, made in its store. The connector then pulls them
1. in full (the list API, 100 a page),
2. incrementally from a cursor before all of them (the search API, 200 a page, a new
   query from the last id before the 10,000-result cap),
and, once, the world's contacts with and without the primary-company property, to show
that `Person.account_id` costs no request. Printed: requests by route, wall seconds, the
connector process's CPU per company. The figures of record are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from datetime import datetime, timezone

from connectors.hubspot import mapping
from connectors.hubspot.connector import HubSpotConnector
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorSettings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
INDUSTRIES = ("Software", "Retail", "Manufacturing", "Finance", "Health")


def connect(sandbox: HubSpotSandbox) -> HubSpotConnector:
    return HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), timeout_seconds=30.0))


def routes(sandbox: HubSpotSandbox) -> Counter[str]:
    seen: Counter[str] = Counter()
    for (method, rule, _status), n in sandbox.call_counts.items():
        seen[f"{method} {rule}"] += n
    return seen


def fill(sandbox: HubSpotSandbox, count: int) -> None:
    store = sandbox.api.objects.companies
    owners = sorted(o.id for o in sandbox.state.owners if not o.archived)
    for i in range(count):
        store.add(store.check({
            "name": f"Company {i}", "domain": f"https://www.c{i}.example/",
            "industry": INDUSTRIES[i % len(INDUSTRIES)], "numberofemployees": str(10 + i % 900),
            "country": "Germany", "hubspot_owner_id": owners[i % len(owners)]}))


def measure(sandbox: HubSpotSandbox, since: datetime | None) -> tuple[int, float, float,
                                                                      Counter[str]]:
    """(companies read, wall s, CPU s of this process, requests by route)."""
    before = routes(sandbox)
    connector = connect(sandbox)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        read = sum(len(page) for page in connector.accounts(since))
    finally:
        connector.close()
    return read, time.perf_counter() - wall, time.process_time() - cpu, routes(sandbox) - before


def contacts_cost(people: int) -> None:
    """Requests of a full contact pull with and without `associatedcompanyid` read."""
    with HubSpotSandbox(World(7, people, NOW, hubspot_companies=True)) as sandbox:
        for label, properties in (("with associatedcompanyid", mapping.MODEL_PROPERTIES),
                                  ("without", tuple(p for p in mapping.MODEL_PROPERTIES
                                                    if p != mapping.PRIMARY_COMPANY))):
            original = mapping.MODEL_PROPERTIES
            mapping.MODEL_PROPERTIES = properties
            before = sum(routes(sandbox).values())
            connector = connect(sandbox)
            try:
                linked = sum(1 for page in connector.people() for p in page if p.account_id)
            finally:
                connector.close()
                mapping.MODEL_PROPERTIES = original
            print(f"contacts of {people} people, {label}: "
                  f"{sum(routes(sandbox).values()) - before} requests, {linked} with an account")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print("| companies | pull | requests | searches | wall s | process CPU ms per company |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for count in args.companies:
        with HubSpotSandbox(World(7, 50, NOW)) as sandbox:
            fill(sandbox, count)
            for label, since in (("full (list)", None),
                                 ("incremental (search)", NOW.replace(year=2000))):
                read, wall, cpu, used = measure(sandbox, since)
                assert read == count, (read, count)
                searches = used["POST /crm/v3/objects/<object_type>/search"]
                print(f"| {count:,} | {label} | {sum(used.values())} | {searches} | "
                      f"{wall:.1f} | {cpu / count * 1000:.3f} |")
    contacts_cost(args.people)


if __name__ == "__main__":
    main()
