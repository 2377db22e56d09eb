"""Benchmark of hand-raises through webhooks: form fill to owner in both CRMs, and a burst.

    .venv/bin/python -m bench.bench_webhooks [--people 3000] [--fills 200] [--burst 1000]

Both sandbox CRMs serve a world of `--people`; a first full sync fills the state (as a
daemon's first run would); then the inbound endpoint and its processor run in this process
(syncer/web/webhook_server.py, exactly what `syncer run` starts) and the sandbox portal's
webhook sender (connectors/sandbox/webhooks.py) posts to it over HTTP on 127.0.0.1.

1. `--fills` form fills ("Request a demo") on unrouted leads that live in both CRMs, one
   every `--gap` seconds; for each, the time from the form fill to the moment both CRMs
   hold the stage and the same rep as owner (polled every 20 ms, around the API limits).
2. A burst of `--burst` contact edits over `--burst-people` contacts as fast as the
   sandbox takes them: events sent, stored, runs that consumed them, and events lost.
Prints a table; the figures of record are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from bench.sandbox_config import example_config, point_at_sandboxes
from connectors.sandbox import build_sandbox
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.webhooks import attach_webhooks, submit_form
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.config import load_config
from syncer.domain.types import Stage
from syncer.observe.metrics import SyncMetrics
from syncer.run.pipeline import run_sync
from syncer.store import inbound_events
from syncer.store.inbound_events import inbound_events as events_table
from syncer.web.webhook_server import InboundService

SECRET = "bench-client-secret"


@dataclass
class Pending:
    person: str
    contact: str
    lead: str
    sent: float
    done: float | None = None


def write_config(folder: Path, hubspot: Any, salesforce: Any) -> Path:
    data = example_config(folder)
    data["health"] = {"enabled": False}
    point_at_sandboxes(data, {"hubspot": hubspot, "salesforce": salesforce})
    os.environ["BENCH_HUBSPOT_CLIENT_SECRET"] = SECRET
    data["webhooks"] = {"enabled": True, "listen": "127.0.0.1:0", "poll_seconds": 1.0,
                        "sources": {"hubspot": {
                            "kind": "hubspot", "connector": "hubspot",
                            "secret": {"env": "BENCH_HUBSPOT_CLIENT_SECRET"}}}}
    path = folder / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def unrouted_leads(runtime: Runtime, count: int) -> list[tuple[str, str, str]]:
    store = runtime.require_store()
    keys = store.person_keys()
    decisions = store.decisions(keys, scores=False)
    people = store.load_people(keys)
    found = []
    for key in keys:
        records = {r.source: r.record_id for r in people[key][0]}
        decision = decisions.get(key)
        if decision is not None and decision.stage in (Stage.LEAD, Stage.SUBSCRIBER) \
                and decision.owner_email is None and set(records) == {"hubspot",
                                                                      "salesforce"}:
            found.append((key, records["hubspot"], records["salesforce"]))
    if len(found) < count:
        raise SystemExit(f"only {len(found)} unrouted leads in both CRMs; use more --people")
    return found[:count]


def owners(runtime: Runtime) -> dict[str, dict[str, str]]:
    return {name: {o.owner_id: o.email.lower() for o in c.owners()}
            for name, c in runtime.connectors.items()}


def routed(hubspot: HubSpotSandbox, salesforce: Any, item: Pending,
           by_id: dict[str, dict[str, str]]) -> bool:
    """Both CRMs show a qualified stage and the same rep as owner."""
    contact = hubspot.state.contact(item.contact)
    if contact is None or contact.properties.get("lifecyclestage") != "salesqualifiedlead":
        return False
    rep = by_id["hubspot"].get(contact.properties.get("hubspot_owner_id") or "")
    lead = salesforce.record(item.lead)
    return rep is not None and lead.get("Syncer_Stage__c") == "SQL" \
        and by_id["salesforce"].get(lead.get("OwnerId") or "") == rep


def form_fills(hubspot: HubSpotSandbox, salesforce: Any, runtime: Runtime, url: str,
               fills: int, gap: float) -> list[float]:
    by_id = owners(runtime)
    targets = unrouted_leads(runtime, fills)
    sender = attach_webhooks(hubspot, url, SECRET)
    waiting: list[Pending] = []
    done: list[Pending] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for item in list(waiting):
                if routed(hubspot, salesforce, item, by_id):
                    item.done = time.monotonic()
                    waiting.remove(item)
                    done.append(item)
            time.sleep(0.02)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for person, contact, lead in targets:
        waiting.append(Pending(person, contact, lead, time.monotonic()))
        submit_form(hubspot, contact, "Request a demo")
        time.sleep(gap)
    deadline = time.monotonic() + 300
    while waiting and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    watcher.join()
    sender.flush()
    sender.stop()
    if waiting:
        print(f"{len(waiting)} form fills never reached both owners")
    return [item.done - item.sent for item in done if item.done is not None]


def burst(hubspot: HubSpotSandbox, runtime: Runtime, url: str, edits: int,
          people: int) -> dict[str, float]:
    store = runtime.require_store()
    before = inbound_events.counts(store)
    contacts = [c.id for c, _ in zip(hubspot.state.iter_contacts(), range(people),
                                     strict=False)]
    sender = attach_webhooks(hubspot, url, SECRET)
    start = time.monotonic()
    for number in range(edits):
        hubspot.edit(contacts[number % len(contacts)], "jobtitle", f"Burst title {number}")
    sender.flush(timeout=600)
    while inbound_events.counts(store).get("pending", 0):
        time.sleep(0.05)
    elapsed = time.monotonic() - start
    sender.stop()
    after = inbound_events.counts(store)
    with store.engine.connect() as connection:
        runs = connection.execute(select(func.count(events_table.c.run_id.distinct())).where(
            events_table.c.payload["propertyName"].as_string() == "jobtitle")).scalar()
    stored = sum(after.values()) - sum(before.values())
    return {"edits": edits, "sent": len(sender.delivery.queued_at), "stored": stored,
            "runs": runs or 0,
            "lost": len(sender.delivery.queued_at) - stored, "seconds": elapsed,
            "requests": sender.delivery.requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--fills", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.1,
                        help="seconds between two form fills")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--burst-people", type=int, default=20)
    args = parser.parse_args()
    world = World(seed=11, size=args.people, now=datetime.now(timezone.utc))
    hubspot = build_sandbox("hubspot", world)
    salesforce = build_sandbox("salesforce", world)
    hubspot.start()
    salesforce.start()
    assert isinstance(hubspot, HubSpotSandbox)
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_config(write_config(Path(folder), hubspot, salesforce))
        stop = threading.Event()
        with Runtime(loaded) as runtime:
            began = time.monotonic()
            first = run_sync(loaded, runtime.require_store(), runtime.connectors,
                             runtime.model, datetime.now(timezone.utc))
            print(f"first full sync: {first.people} people in "
                  f"{time.monotonic() - began:.1f} s")
            service = InboundService(runtime, SyncMetrics(), stop)
            service.start()
            while not service.started:
                time.sleep(0.05)
            url = f"{service.url}/webhooks/hubspot"
            latencies = form_fills(hubspot, salesforce, runtime, url, args.fills, args.gap)
            figures = burst(hubspot, runtime, url, args.burst, args.burst_people)
            stop.set()
            service.stop()
    hubspot.stop()
    salesforce.stop()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    print(f"\nmachine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| form fills | reached both owners | p50 | p95 | max |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(f"| {args.fills} | {len(latencies)} | {statistics.median(latencies):.2f} s | "
          f"{cuts[94]:.2f} s | {max(latencies):.2f} s |")
    print("\n| burst edits | events sent (edits and echoes) | stored | runs | lost | "
          "seconds to consumed | requests |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {figures['edits']} | {figures['sent']} | {figures['stored']} | {figures['runs']} | "
          f"{figures['lost']} | {figures['seconds']:.1f} | {figures['requests']} |")


if __name__ == "__main__":
    main()
