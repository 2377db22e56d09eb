"""Benchmark of a sync through bursts of rate-limit answers on both CRMs.

    .venv/bin/python -m bench.bench_rate_limits [--people N] [--simulate]

Both sandboxes refuse the last 10 of every 11 requests (`--fault-429-burst 11:10`: HubSpot
429 TEN_SECONDLY_ROLLING, Salesforce 403 REQUEST_LIMIT_EXCEEDED for concurrent requests),
so every answered request is followed by ten rate-limit answers in a row. Their own
request windows are off, so only the bursts refuse anything. One full sync with the
default retry policy (6 attempts for errors) and the default per-run deadline of rate-limit
waiting (900 s per CRM). Reports the run's status, dead letters, and per CRM the requests,
bursts, rate-limit answers and the seconds waited. `--simulate` records the waits instead
of sleeping them (the figures are the same; the wall clock is not).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.faults import FaultConfig, SalesforceLimits
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.api_usage import ApiUsage
from syncer.domain.config import EXAMPLE_CONFIG, connector_settings, parse_config
from syncer.domain.connector import Connector
from syncer.qualify import load_model
from syncer.run.pipeline import run_sync
from syncer.store import dead_letters
from syncer.store.repository import Store

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
BURSTS = FaultConfig(burst_every=11, burst_length=10)


class Waits:
    """time.sleep that also adds up what it slept (or, simulating, only adds it up)."""

    def __init__(self, simulate: bool) -> None:
        self.simulate = simulate
        self.total = 0.0
        self.count = 0

    def __call__(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1
        if not self.simulate:
            time.sleep(seconds)


def config_for(folder: Path, hubspot: HubSpotSandbox, salesforce: SalesforceSandbox) -> Any:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["state"] = {"url": f"sqlite:///{folder / 'state.db'}"}
    data["model"] = str(EXAMPLE_CONFIG.parent / "model.example.yaml")
    for entry in data["connectors"]:
        sandbox: Any = hubspot if entry["kind"] == "hubspot" else salesforce
        entry.pop("sandbox", None)
        entry["base_url"] = sandbox.base_url
        if sandbox.ca_file:
            entry["ca_file"] = sandbox.ca_file
        entry["credentials"] = {}
        for key, value in sandbox.credentials.items():
            variable = f"BENCH_{entry['kind'].upper()}_{key.upper()}"
            os.environ[variable] = value
            entry["credentials"][key] = {"env": variable}
    return parse_config(data, folder / "syncer.yaml")


def connectors_for(loaded: Any, sleep: Callable[[float], None],
                   hubspot_page: int) -> dict[str, Connector]:
    policy = RetryPolicy(sleep=sleep)
    built: dict[str, Connector] = {}
    for entry in loaded.config.connectors:
        settings = connector_settings(loaded, entry)
        if entry.kind == "hubspot":
            built[entry.name] = HubSpotConnector(replace(settings, options={
                **settings.options, "retry_policy": policy, "page_size": hubspot_page,
                "events_page_size": 200}))
        else:
            built[entry.name] = SalesforceConnector(settings, retry=policy)
    return built


def run(people: int, simulate: bool, hubspot_page: int,
        salesforce_page: int) -> list[tuple[str, str]]:
    world = World(seed=7, size=people, now=NOW)
    hubspot = HubSpotSandbox(world, requests_per_10s=None, search_requests_per_second=None,
                             faults=BURSTS)
    salesforce = SalesforceSandbox(world, limits=SalesforceLimits(query_batch=salesforce_page),
                                   faults=BURSTS)
    hubspot.start()
    salesforce.start()
    waits = Waits(simulate)
    try:
        with tempfile.TemporaryDirectory() as folder:
            loaded = config_for(Path(folder), hubspot, salesforce)
            connectors = connectors_for(loaded, waits, hubspot_page)
            store = Store.open(loaded.state_url)
            try:
                started = time.perf_counter()
                summary = run_sync(loaded, store, connectors,
                                   load_model(Path(loaded.model_path)), NOW)
                wall = time.perf_counter() - started
                letters = dead_letters.open_count(store)
                waited = {name: usage.rate_limit_waited
                          for name, connector in connectors.items()
                          if isinstance(usage := getattr(connector, "usage", None), ApiUsage)}
            finally:
                store.close()
                for connector in connectors.values():
                    connector.close()
    finally:
        hubspot.stop()
        salesforce.stop()
    rows = [("people", f"{people:,}"), ("run status", summary.status),
            ("dead letters", str(letters)),
            ("fields written", f"{sum(summary.fields_written.values()):,}")]
    for name, sandbox in (("hubspot", hubspot), ("salesforce", salesforce)):
        bursts = sandbox.faults.counts()["burst_429"]
        usage = summary.api_usage.get(name, {})
        rows += [(f"{name}: requests / answered", f"{summary.api_calls[name]:,} / "
                  f"{summary.api_calls[name] - bursts:,}"),
                 (f"{name}: bursts of ten rate-limit answers", f"{bursts // 10}"),
                 (f"{name}: retries (none spent an attempt)", str(usage.get("retries"))),
                 (f"{name}: waited for rate limits (allowance 900 s)",
                  f"{waited[name]:,.1f} s")]
    rows += [("waits (rate limits, pacing)", f"{waits.count:,}, {waits.total:,.1f} s"
              + (" simulated" if simulate else "")),
             ("wall", f"{wall:,.1f} s")]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--hubspot-page", type=int, default=20)
    parser.add_argument("--salesforce-page", type=int, default=100)
    parser.add_argument("--simulate", action="store_true")
    args = parser.parse_args()
    print(f"{platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}")
    rows = run(args.people, args.simulate, args.hubspot_page, args.salesforce_page)
    print("\n| measure | value |\n| --- | ---: |")
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
