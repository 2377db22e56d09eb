"""What accounts cost (issue 20 item 3): the account core alone, and a sync with and
without a model `accounts:` section on the same world.

    python -m bench.bench_accounts --people 3000 --companies 20000

Core: `decide_account` for `--companies` companies of 1 to 40 people each (a person's
engagement drawn once), per company. Sync: both sandboxes in this process, every world
company made a HubSpot company (with its contacts associated) beside its Salesforce
Account; for each model (the example model, then the same with an accounts section and
`account_fields` on both connectors) a full sync, then a quiet incremental one, each on
fresh sandboxes and a fresh state. Prints wall time, API calls and fields written per run.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bench.sandbox_config import REPO, RunningSandbox, example_config, point_at_sandboxes
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.seed import account_id
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli.commands.setup import set_up_all
from syncer.cli.runtime import Runtime
from syncer.domain.accounts import Account
from syncer.domain.config import LoadedConfig, load_config
from syncer.qualify import parse_model
from syncer.qualify.accounts import AccountMember, decide_account
from syncer.run.pipeline import run_sync

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ACCOUNTS: dict[str, Any] = {
    "fit": {"rules": [
        {"id": "software", "field": "industry", "in": ["Software", "SaaS", "Technology"],
         "points": 10},
        {"id": "size", "field": "employees", "min": 200, "points": 10},
        {"id": "country", "field": "country", "in": ["United States", "Germany"],
         "points": 5}],
        "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": 10},
                   {"grade": "C", "min": -1000}]},
    "engagement": {"per_person_cap": 30, "engaged_person_min": 10},
    "mqa": {"min_engaged_people": 3, "min_score": 40},
    "buying_roles": {"decision_maker": ["vp", "chief", "head of", "director"],
                     "champion": ["manager", "lead"], "user": ["engineer", "analyst"]},
}


def sandbox_config(hubspot: RunningSandbox, salesforce: RunningSandbox, folder: Path,
                   accounts: bool = False) -> LoadedConfig:
    """The example config pointed at the sandboxes, secrets in the environment; with
    `accounts` the model scores companies and both connectors write account fields."""
    data = example_config(folder)
    point_at_sandboxes(data, {"hubspot": hubspot, "salesforce": salesforce})
    if accounts:
        model = yaml.safe_load((REPO / "config" / "model.example.yaml").read_text())
        model["accounts"] = ACCOUNTS
        (folder / "model.yaml").write_text(yaml.safe_dump(model))
        data["model"] = str(folder / "model.yaml")
        for connector in data["connectors"]:
            connector["account_fields"] = {}
    path = folder / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def bench_core(companies: int) -> None:
    model_data: dict[str, Any] = yaml.safe_load(
        (REPO / "config" / "model.example.yaml").read_text())
    model = parse_model({**model_data, "accounts": ACCOUNTS})
    rng = random.Random(7)
    work = []
    for c in range(companies):
        record = (Account("hubspot", str(c), name=f"Company {c}", domain=f"c{c}.example",
                          industry=rng.choice(["Software", "Retail"]),
                          employees=rng.randint(1, 5000), country="Germany"),)
        people = [AccountMember(f"p{i}@c{c}.example", rng.uniform(-5, 60))
                  for i in range(rng.randint(1, 40))]
        work.append((f"domain:c{c}.example", record, people))
    started = time.perf_counter()
    mqa = sum(decide_account(key, record, people, model).is_mqa
              for key, record, people in work)
    elapsed = time.perf_counter() - started
    people_count = sum(len(p) for _, _, p in work)
    print(f"core: {companies} companies, {people_count} people, {mqa} MQA: "
          f"{elapsed:.2f} s, {elapsed / companies * 1e6:.0f} us per company")


def hubspot_companies(world: World, hubspot: HubSpotSandbox) -> None:
    """Every world company as a HubSpot company, its contacts associated."""
    objects = hubspot.api.objects
    made = {i: objects.companies.add(objects.companies.check(
        {"name": world.company(i).name, "domain": world.company(i).domain})).id
        for i in range(world.companies)}
    by_email = {str(r["email"]): str(r["id"]) for r in hubspot.records()}
    for i in range(world.size):
        person = world.person(i, with_activities=False)
        if person.in_hubspot and person.email in by_email:
            objects.associations.associate("contacts", by_email[person.email], "companies",
                                           made[person.company_index])


def bench_sync(people: int, folder: Path) -> None:
    for label, accounts in (("accounts off", False), ("accounts on", True)):
        world = World(seed=5, size=people, now=NOW)
        with HubSpotSandbox(world) as hubspot, SalesforceSandbox(world) as salesforce:
            hubspot_companies(world, hubspot)
            for i in range(world.companies):  # Website at the people's domain
                salesforce.edit(account_id(i), "Website",
                                f"https://{world.company(i).domain}")
            run_variant(label, accounts, folder, hubspot, salesforce)


def run_variant(label: str, accounts: bool, folder: Path, hubspot: HubSpotSandbox,
                salesforce: SalesforceSandbox) -> None:
    """A full sync then a quiet one, in a fresh state, on fresh sandboxes."""
    run_folder = folder / label.replace(" ", "-")
    run_folder.mkdir()
    loaded = sandbox_config(hubspot, salesforce, run_folder, accounts)
    with Runtime(loaded) as runtime:
        set_up_all(loaded, runtime, dry_run=False)
    for run in ("full", "quiet"):
        with Runtime(loaded) as runtime:
            started = time.perf_counter()
            summary = run_sync(loaded, runtime.require_store(), runtime.connectors,
                               runtime.model, NOW)
            elapsed = time.perf_counter() - started
        print(f"sync {label}, {run}: {summary.status}, {elapsed:.1f} s, "
              f"api calls {dict(summary.api_calls)}, "
              f"fields written {dict(summary.fields_written)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--companies", type=int, default=20000)
    args = parser.parse_args()
    bench_core(args.companies)
    with tempfile.TemporaryDirectory() as folder:
        bench_sync(args.people, Path(folder))


if __name__ == "__main__":
    main()
