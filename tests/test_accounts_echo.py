"""The echo of syncer's own account writes costs nothing (issue 18 item 3, with accounts
on): after a full sync that wrote every company's score, grade, MQA flag and reasons, the
first and every quiet incremental spend the requests of a run without accounts plus
exactly one, the accounts' own incremental read (HubSpot: one companies search; Salesforce:
one Account query), read no company back (Salesforce: the last second of our writes once,
found unchanged), decide no company and write nothing. A change someone else makes to a
HubSpot company or a Salesforce Account is still read and decided, after syncer's writes
or inside the cursor's overlap before them.

Both sandbox CRMs over HTTP with the real clients; counted on the sandboxes' own request
logs, changed only through their control API (tests/sandbox_control.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.sandbox.salesforce.seed import account_id
from connectors.sandbox.world import World, WorldCompany
from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.run.accounts import AccountStage
from syncer.store import accounts as account_store
from syncer.store import echo as echo_store
from syncer.store import undecided
from tests.conftest import NOW, Killed, Sandboxes, sync_once
from tests.sandbox_control import control, result
from tests.test_accounts_sync import (
    HS_GRADE,
    SF_GRADE,
    accounts_model,
    company_people,
    configure,
    hubspot_company,
    hubspot_company_values,
    hubspot_ids,
    hubspot_of,
    record,
    salesforce_of,
)
from tests.test_echo import calls, of

#: more employees than any world company has: the fit rule only an edit can meet
MANY = 200_000
COMPANY_SEARCH = "POST /crm/v3/objects/<object_type>/search"


def big_company_model() -> dict[str, Any]:
    """accounts_model(), with grade A only for a company of at least MANY employees."""
    model = accounts_model()
    model["accounts"]["fit"] = {
        "rules": [{"id": "huge", "field": "employees", "min": MANY, "points": 10}],
        "grades": [{"grade": "A", "min": 10}, {"grade": "B", "min": -1000}]}
    return model


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=7, size=300, now=NOW, salesforce_accounts=True)


def set_up(tmp_path: Path, sandboxes: Sandboxes, world: World,
           monkeypatch: pytest.MonkeyPatch, state_url: str | None = None
           ) -> tuple[LoadedConfig, WorldCompany, str]:
    """Accounts on (the account fields made by `syncer setup`), and one company that is a
    HubSpot company with its contacts beside its Salesforce Account; the HubSpot
    company's id. Every other company is a Salesforce Account only. The state is
    `state_url`, else a SQLite file in `tmp_path`."""
    loaded = configure(tmp_path, sandboxes, big_company_model(), monkeypatch, state_url)
    assert main(["setup", "--config", str(loaded.path)]) == 0
    company, people = company_people(world, 3)
    contacts = hubspot_ids(sandboxes)
    return loaded, company, hubspot_company(sandboxes, company,
                                            [contacts[p.email] for p in people])


def grow_two_companies(sandboxes: Sandboxes, world: World, company: WorldCompany,
                       hs_company: str) -> WorldCompany:
    """A rep edits the HubSpot company (it comes first in the config: its size counts)
    and another company's Salesforce Account to MANY employees, after syncer wrote both;
    returns that other company."""
    other = next(world.company(i) for i in range(world.companies)
                 if world.company(i).domain != company.domain)
    result(hubspot_of(sandboxes), "edit_company", id=hs_company, field="numberofemployees",
           value=str(MANY))
    result(salesforce_of(sandboxes), "edit_account", id=account_id(other.index),
           fields={"NumberOfEmployees": MANY})
    return other


def account_events(logs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """connector -> (accounts read, of them changed) of a run's accounts pulls."""
    return {e["connector"]: (e["read"], e["accounts"])
            for e in logs if e["event"] == "accounts.pulled"}


def decided(logs: Sequence[Mapping[str, Any]]) -> int:
    """How many companies the run decided."""
    return sum(e["accounts"] for e in logs if e["event"] == "accounts.decided")


def quiet_requests(extra: Mapping[str, int]) -> dict[str, Counter[str]]:
    """What a run with nothing to read costs without accounts (tests/test_echo.py:
    HubSpot people and merges searches and one events page; Salesforce one Composite call
    for Leads and Contacts, one for the activity streams, the sign-in), plus `extra`
    queries (HubSpot searches) per CRM."""
    salesforce = Counter({"POST composite": 2, "POST oauth2/token": 1})
    if extra["salesforce"]:
        salesforce["GET query"] = extra["salesforce"]
    return {"hubspot": Counter({COMPANY_SEARCH: 2 + extra["hubspot"],
                                "GET /events/v3/events/": 1}),
            "salesforce": salesforce}


def test_quiet_runs_with_accounts_read_no_account_echo_and_write_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World,
        sandboxes: Sandboxes) -> None:
    loaded, company, hs_company = set_up(tmp_path, sandboxes, world, monkeypatch)
    with capture_logs() as logs:
        full = sync_once(loaded)
    assert full.status == "succeeded"
    companies = decided(logs)
    assert companies >= world.companies  # every Account and the HubSpot company
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "B"
    assert record(salesforce_of(sandboxes), account_id(company.index))[SF_GRADE] == "B"
    with Runtime(loaded) as runtime:
        with runtime.require_store().engine.connect() as connection:
            for name in ("hubspot", "salesforce"):  # the full sync's account writes
                assert len(echo_store.windows(connection, name,
                                              stream=echo_store.ACCOUNTS)) == 1
    # with accounts on, one request per CRM more than without: the accounts' own read
    want = quiet_requests({"hubspot": 1, "salesforce": 1})
    for run in range(3):  # the first incremental, then quiet ones: nothing builds up
        before = calls(sandboxes)
        with capture_logs() as logs:
            quiet = sync_once(loaded)
        spent = calls(sandboxes) - before
        assert quiet.status == "succeeded"
        assert quiet.people == 0 and quiet.fields_written == Counter()
        assert sum(quiet.records_pulled.values()) == 0
        pulled = account_events(logs)
        # HubSpot's batch answers told the exact stamps of our company writes
        assert pulled["hubspot"] == (0, 0)
        # Salesforce stamps whole seconds: the last second of our Account writes is read
        # back once, found unchanged (the values written are stored with the write)
        read, changed = pulled["salesforce"]
        assert changed == 0 and (read == 0 or run == 0)
        assert decided(logs) == 0
        assert {crm: of(spent, crm) for crm in ("hubspot", "salesforce")} == want


def test_others_edits_to_a_company_and_an_account_are_read_and_decided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World,
        sandboxes: Sandboxes) -> None:
    loaded, company, hs_company = set_up(tmp_path, sandboxes, world, monkeypatch)
    assert sync_once(loaded).status == "succeeded"
    other = grow_two_companies(sandboxes, world, company, hs_company)
    with capture_logs() as logs:
        second = sync_once(loaded)
    assert second.status == "succeeded"
    pulled = account_events(logs)
    assert pulled["hubspot"] == (1, 1)
    read, changed = pulled["salesforce"]
    assert changed == 1 and read >= 1  # with, perhaps, the full sync's last second
    assert decided(logs) == 2
    with Runtime(loaded) as runtime:
        with runtime.require_store().engine.connect() as connection:
            decisions = account_store.decisions(connection)
    keys = {f"domain:{company.domain}", f"domain:{other.domain}"}
    assert {key: decisions[key].grade for key in keys} == dict.fromkeys(keys, "A")
    # each company's new grade is written to every CRM record of it, once
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "A"
    salesforce = salesforce_of(sandboxes)
    assert record(salesforce, account_id(company.index))[SF_GRADE] == "A"
    assert record(salesforce, account_id(other.index))[SF_GRADE] == "A"
    assert second.records_written == Counter({"hubspot": 1, "salesforce": 2})
    with capture_logs() as logs:
        third = sync_once(loaded)  # what the second run wrote is its own echo
    assert third.fields_written == Counter() and decided(logs) == 0
    assert account_events(logs)["hubspot"] == (0, 0)
    assert account_events(logs)["salesforce"][1] == 0


def test_an_edit_in_the_overlap_before_our_writes_is_still_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World,
        sandboxes: Sandboxes) -> None:
    """The account windows are left out of the pull's time range, not the overlap: a
    change stamped two minutes behind the accounts cursor (one the search index showed
    late), before syncer's writes, is read on each CRM."""
    loaded, company, hs_company = set_up(tmp_path, sandboxes, world, monkeypatch)
    assert sync_once(loaded).status == "succeeded"
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        cursors = {name: store.cursor(name, account_store.ACCOUNTS_STREAM)
                   for name in ("hubspot", "salesforce")}
    late = {name: cursor - timedelta(minutes=2) for name, cursor in cursors.items()
            if cursor is not None}
    other = next(world.company(i) for i in range(world.companies)
                 if world.company(i).domain != company.domain)
    result(hubspot_of(sandboxes), "edit_company", id=hs_company, field="numberofemployees",
           value=str(MANY), stamp=late["hubspot"].isoformat())
    control(salesforce_of(sandboxes), "edit", id=account_id(other.index),
            field="NumberOfEmployees", value=str(MANY), stamp=late["salesforce"].isoformat())
    with capture_logs() as logs:
        second = sync_once(loaded)
    assert second.status == "succeeded"
    pulled = account_events(logs)
    assert pulled["hubspot"] == (1, 1)
    assert pulled["salesforce"][1] == 1
    assert decided(logs) == 2
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "A"
    assert record(salesforce_of(sandboxes), account_id(other.index))[SF_GRADE] == "A"



def test_companies_a_dead_run_pulled_are_decided_by_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World,
        sandboxes: Sandboxes) -> None:
    """A run that stored others' edits to a company and an Account, moved its accounts
    cursors past them and died before deciding them, leaves them noted
    (syncer/store/undecided.py): the next run, whose pull finds nothing new, decides both
    companies and writes their new grade."""
    loaded, company, hs_company = set_up(tmp_path, sandboxes, world, monkeypatch)
    assert sync_once(loaded).status == "succeeded"
    other = grow_two_companies(sandboxes, world, company, hs_company)

    def die(*_: Any, **__: Any) -> None:
        raise Killed
    with monkeypatch.context() as patched:
        patched.setattr(AccountStage, "decide", die)
        with pytest.raises(Killed):
            sync_once(loaded)
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "B"

    with capture_logs() as logs:
        second = sync_once(loaded)
    assert second.status == "succeeded"
    assert [changed for _, changed in account_events(logs).values()] == [0, 0]
    assert decided(logs) == 2
    assert hubspot_company_values(sandboxes, hs_company)[HS_GRADE] == "A"
    assert record(salesforce_of(sandboxes), account_id(other.index))[SF_GRADE] == "A"
    with Runtime(loaded) as runtime, runtime.require_store().engine.connect() as connection:
        assert undecided.accounts(connection) == {}
    with capture_logs() as logs:
        third = sync_once(loaded)
    assert third.fields_written == Counter() and decided(logs) == 0
