"""The accounts' reconciliation sweep (issue 18 item 3, with accounts on): a company stamped
behind the accounts cursor, which no incremental accounts pull reads again, is found by
the next sweep, decided, and its new grade written to every CRM record of it; a pass
spread over runs by a small call budget goes on from its position and reads each page
once; a model without `accounts:` makes no account sweep call.

Both sandbox CRMs over HTTP with the real clients, changed only through their control
API (tests/sandbox_control.py); what the CRMs hold is read back the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from structlog.testing import capture_logs

from connectors.hubspot import companies as hubspot_companies
from connectors.hubspot.connector import HubSpotConnector
from connectors.salesforce import accounts as salesforce_accounts
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.hubspot.objects import company_id_for
from connectors.sandbox.salesforce.seed import account_id
from connectors.sandbox.world import World
from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.accounts import Account
from syncer.domain.config import LoadedConfig
from syncer.run.account_sweep import KEY_LENGTH, sweep_key
from syncer.store import accounts as account_store
from syncer.store import sweep as sweep_store
from syncer.store.sweep import sweeps
from tests.conftest import NOW, Sandboxes, running_sandboxes, sync_once, write_config
from tests.sandbox_control import control, result
from tests.test_accounts_echo import MANY, account_events, big_company_model, decided, set_up
from tests.test_accounts_sync import (
    HS_GRADE,
    SF_GRADE,
    configure,
    hubspot_company_values,
    hubspot_of,
    record,
    salesforce_of,
)

#: a day on: the sweeps are due again
LATER = NOW + timedelta(hours=25)
CONNECTORS = ("hubspot", "salesforce")


def accounts_mark(loaded: LoadedConfig, connector: str) -> sweep_store.SweepMark:
    with Runtime(loaded) as runtime, runtime.require_store().engine.connect() as connection:
        return sweep_store.mark(connection, sweep_key(connector))


def accounts_cursor(loaded: LoadedConfig, connector: str) -> datetime:
    with Runtime(loaded) as runtime:
        cursor = runtime.require_store().cursor(connector, account_store.ACCOUNTS_STREAM)
    assert cursor is not None
    return cursor


def sweep_events(logs: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """connector -> the run's accounts sweep event (done or paused)."""
    return {e["connector"]: e for e in logs
            if e["event"] in ("accounts.sweep.done", "accounts.sweep.paused")}


Read = list[tuple[str | None, list[str]]]


def spy_on_sweep_pages(monkeypatch: pytest.MonkeyPatch) -> dict[str, Read]:
    """Every accounts sweep page the connectors ask for: connector kind -> [(position
    asked, record ids the CRM answered)], in order."""
    asked: dict[str, Read] = {"hubspot": [], "salesforce": []}

    def spying(kind: str, real: Callable[..., tuple[list[Account], str | None]]
               ) -> Callable[..., tuple[list[Account], str | None]]:
        def page(self: object, position: str | None) -> tuple[list[Account], str | None]:
            found, following = real(self, position)
            asked[kind].append((position, [a.record_id for a in found]))
            return found, following
        return page

    for kind, cls in (("hubspot", HubSpotConnector), ("salesforce", SalesforceConnector)):
        monkeypatch.setattr(cls, "account_sweep_page", spying(kind, cls.account_sweep_page))
    return asked


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=7, size=300, now=NOW, salesforce_accounts=True)


def test_a_company_stamped_behind_the_accounts_cursor_is_found_by_the_next_sweep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World, sandboxes: Sandboxes,
        state_url: str) -> None:
    loaded, company, hs_company = set_up(tmp_path, sandboxes, world, monkeypatch, state_url)
    other = next(world.company(i) for i in range(world.companies)
                 if world.company(i).domain != company.domain)
    assert sync_once(loaded).status == "succeeded"
    for name in CONNECTORS:  # a full accounts pull is a pass
        assert accounts_mark(loaded, name) == sweep_store.SweepMark(done_at=NOW)
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "B"
    assert record(salesforce_of(sandboxes), account_id(other.index))[SF_GRADE] == "B"

    # a rep's edits land half an hour behind the accounts cursors (a late commit, a
    # restored backup): the HubSpot company (its size counts: it comes first) and
    # another company's Salesforce Account
    behind = {name: accounts_cursor(loaded, name) - timedelta(minutes=30)
              for name in CONNECTORS}
    result(hubspot_of(sandboxes), "edit_company", id=hs_company, field="numberofemployees",
           value=str(MANY), stamp=behind["hubspot"].isoformat())
    control(salesforce_of(sandboxes), "edit", id=account_id(other.index),
            field="NumberOfEmployees", value=str(MANY),
            stamp=behind["salesforce"].isoformat())

    with capture_logs() as logs:  # the incremental pulls cannot see them; no sweep due
        missed = sync_once(loaded, now=NOW + timedelta(hours=1))
    assert missed.status == "succeeded" and sweep_events(logs) == {}
    assert [changed for _, changed in account_events(logs).values()] == [0, 0]
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "B"
    assert record(salesforce_of(sandboxes), account_id(other.index))[SF_GRADE] == "B"

    with capture_logs() as logs:  # a day on: the accounts sweep is due
        swept = sync_once(loaded, now=LATER)
    assert swept.status == "succeeded"
    events = sweep_events(logs)
    assert {name: (e["event"], e["found"]) for name, e in events.items()} == {
        "hubspot": ("accounts.sweep.done", 1), "salesforce": ("accounts.sweep.done", 1)}
    assert events["salesforce"]["read"] == world.companies  # every Account, one query
    assert events["hubspot"]["read"] == 1 and events["salesforce"]["pages"] == 1
    # the day's first run decides every company again; only the sweep brought the edits
    assert [changed for _, changed in account_events(logs).values()] == [0, 0]
    keys = {f"domain:{company.domain}", f"domain:{other.domain}"}
    with Runtime(loaded) as runtime, runtime.require_store().engine.connect() as connection:
        grades = {key: d.grade for key, d in account_store.decisions(connection).items()}
    assert {key: grades[key] for key in keys} == dict.fromkeys(keys, "A")
    # each company's new grade is in every CRM record of it
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "A"
    assert record(salesforce_of(sandboxes), account_id(company.index))[SF_GRADE] == "A"
    assert record(salesforce_of(sandboxes), account_id(other.index))[SF_GRADE] == "A"
    for name in CONNECTORS:
        mark = accounts_mark(loaded, name)
        assert mark.done_at == LATER and not mark.under_way

    with capture_logs() as logs:  # not due again yet; what was found is decided once
        again = sync_once(loaded, now=LATER + timedelta(hours=1))
    assert sweep_events(logs) == {} and decided(logs) == 0
    assert again.fields_written == {}


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_pass_over_a_small_call_budget_resumes_and_reads_each_page_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_url: str) -> None:
    world = World(seed=7, size=300, now=NOW, salesforce_accounts=True,
                  hubspot_companies=True)  # 50 companies in each CRM
    monkeypatch.setattr(hubspot_companies, "SWEEP_PAGE", 20)  # 20, 20 and 10 a page
    monkeypatch.setattr(salesforce_accounts, "SWEEP_PAGE", 20)
    asked = spy_on_sweep_pages(monkeypatch)
    with running_sandboxes(world) as boxes:
        configured = configure(tmp_path, boxes, big_company_model(), monkeypatch, state_url)
        data = yaml.safe_load(configured.path.read_text())
        for connector in data["connectors"]:
            connector["sweep_calls_per_run"] = 1  # one listing page per run
        loaded = write_config(configured.path, data)
        assert main(["setup", "--config", str(loaded.path)]) == 0
        assert sync_once(loaded).status == "succeeded"
        assert asked == {"hubspot": [], "salesforce": []}  # the full pull was the pass
        # the company whose records come last in id order is edited behind the cursor
        last = world.companies - 1
        result(hubspot_of(boxes), "edit_company", id=company_id_for(last),
               field="numberofemployees", value=str(MANY),
               stamp=(accounts_cursor(loaded, "hubspot") - timedelta(minutes=30)).isoformat())

        runs = []
        for run in range(4):
            with capture_logs() as logs:
                summary = sync_once(loaded, now=LATER + timedelta(minutes=10 * run))
            assert summary.status == "succeeded"
            runs.append({name: (e["event"], e["pages"], e["read"], e["found"])
                         for name, e in sweep_events(logs).items()})
            if run < 2:  # found in the last page only
                assert hubspot_company_values(boxes, company_id_for(last))[HS_GRADE] == "B"
        assert hubspot_company_values(boxes, company_id_for(last))[HS_GRADE] == "A"
        assert record(salesforce_of(boxes), account_id(last))[SF_GRADE] == "A"
        every = {"hubspot": sorted((company_id_for(i) for i in range(world.companies)),
                                   key=int),
                 "salesforce": sorted(account_id(i) for i in range(world.companies))}

    paused = ("accounts.sweep.paused", 1, 20, 0)
    assert runs[:3] == [dict.fromkeys(CONNECTORS, paused), dict.fromkeys(CONNECTORS, paused),
                        {"hubspot": ("accounts.sweep.done", 1, 10, 1),
                         "salesforce": ("accounts.sweep.done", 1, 10, 0)}]
    assert runs[3] == {}  # the pass is done: not due for a day
    for kind, pages in asked.items():
        ids = [i for _, found in pages for i in found]
        assert len(pages) == 3  # one page a run, none asked twice
        assert ids == every[kind]  # each record once, in id order
        # each run went on after the last record the one before it stored
        assert [position for position, _ in pages] == [None, pages[0][1][-1], pages[1][1][-1]]
    with Runtime(loaded) as runtime, runtime.require_store().engine.connect() as connection:
        rows = set(connection.execute(select(sweeps.c.connector)).scalars())
    assert {sweep_key(name) for name in CONNECTORS} <= rows


def test_a_model_without_accounts_makes_no_account_sweep_call(
        sandbox_config: LoadedConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = spy_on_sweep_pages(monkeypatch)
    sync_once(sandbox_config)
    with capture_logs() as logs:
        swept = sync_once(sandbox_config, now=LATER)  # the people's sweep is due
    assert swept.status == "succeeded"
    assert {e["connector"] for e in logs if e["event"] == "sweep.done"} == set(CONNECTORS)
    assert asked == {"hubspot": [], "salesforce": []}
    assert not [e for e in logs if str(e["event"]).startswith("accounts.")]
    with Runtime(sandbox_config) as runtime, \
            runtime.require_store().engine.connect() as connection:
        rows = set(connection.execute(select(sweeps.c.connector)).scalars())
    assert rows == set(CONNECTORS)  # the people's sweeps only


def test_each_accounts_sweep_has_a_row_of_its_own_within_the_column() -> None:
    assert sweep_key("hubspot") == "hubspot.accounts"
    longest = "a" * 40  # a connector name may have 40 characters
    twin = "a" * 39 + "b"
    assert len(sweep_key(longest)) == len(sweep_key(twin)) == KEY_LENGTH
    assert sweep_key(longest) != sweep_key(twin)
    assert sweep_key(longest).endswith(".accounts")
