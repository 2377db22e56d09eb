"""Accounts end to end (issue 20 item 3): both sandbox CRMs, the real clients, the whole
pipeline. Engaged people arrive at one company run by run; after the third the company
is MQA in the CRMs' account records, with grade and reasons, through audited writes; a
quiet re-run writes nothing; people of an owned account go to the account's owner.

The tests change the running sandboxes only through their control API (companies, people,
Account edits, locked rows: tests/sandbox_control.py) and read the CRMs' records back through
it or hubspot-api-client."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hubspot import HubSpot

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.seed import account_id
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World, WorldCompany, WorldPerson
from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.qualify.accounts import AccountPlan, buying_role
from syncer.run.replay import replay_dead_letters
from syncer.store import accounts as account_store
from syncer.store import dead_letters
from syncer.store import routing as routing_store
from tests.conftest import (
    NOW,
    Sandboxes,
    sandbox_config_data,
    sync_once,
    write_config,
)
from tests.sandbox_control import control_get, result

#: a contact property only this test sets: the people it marks are the engaged ones
INTEREST = "syncer_test_interest"
SF_MQA, SF_GRADE, SF_REASONS = ("Syncer_Account_MQA__c", "Syncer_Account_Grade__c",
                                "Syncer_Account_Reasons__c")
HS_MQA, HS_GRADE, HS_REASONS = ("syncer_account_mqa", "syncer_account_grade",
                                "syncer_account_reasons")


def accounts_model(qualify_everyone: bool = False,
                   routing: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "accounts-e2e",
        "fit": {"rules": [], "grades": [{"grade": "A", "min": -1000}]},
        "engagement": {"rules": [{"id": "interest", "field": "interest", "equals": "high",
                                  "points": 20}]},
        "qualification": {"mql_score": -1000 if qualify_everyone else 1000},
        **({"routing": routing} if routing else {}),
        "accounts": {
            "fit": {"rules": [{"id": "big", "field": "employees", "min": 1, "points": 5}],
                    "grades": [{"grade": "A", "min": 5}, {"grade": "B", "min": -1000}]},
            "engagement": {"per_person_cap": 30, "engaged_person_min": 10},
            "mqa": {"min_engaged_people": 3, "min_score": 40},
            "buying_roles": {"decision_maker": ["vp", "chief", "head of", "director"],
                             "champion": ["manager"], "user": ["engineer", "analyst"]},
        },
    }


def configure(tmp_path: Path, sandboxes: Sandboxes, model: dict[str, Any],
              monkeypatch: pytest.MonkeyPatch, state_url: str | None = None) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(sandboxes, state_url or f"sqlite:///{tmp_path / 'state.db'}",
                               monkeypatch)
    model_path = tmp_path / "model.yaml"
    model_path.write_text(yaml.safe_dump(model, sort_keys=False))
    data["model"] = str(model_path)
    for connector in data["connectors"]:
        connector["account_fields"] = {}
        if connector["kind"] == "hubspot":
            connector["person_fields"] = {"interest": INTEREST}
        connector["fields"]["scores"].pop("lead_routing")
        connector["fields"]["buying_role"] = (
            "syncer_buying_role" if connector["kind"] == "hubspot"
            else "Syncer_Buying_Role__c")
    return write_config(tmp_path / "syncer.yaml", data)


def company_people(world: World, minimum: int) -> tuple[WorldCompany, list[WorldPerson]]:
    """A company with at least `minimum` HubSpot contacts at its own domain."""
    found: dict[int, list[WorldPerson]] = {}
    for i in range(world.size):
        person = world.person(i, with_activities=False)
        if person.in_hubspot and person.domain == world.company(person.company_index).domain:
            found.setdefault(person.company_index, []).append(person)
    index, people = max(found.items(), key=lambda kv: (len(kv[1]), -kv[0]))
    assert len(people) >= minimum
    return world.company(index), people


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=7, size=300, now=NOW)


def hubspot_ids(sandboxes: Sandboxes) -> dict[str, str]:
    return {str(r["email"]): str(r["id"])
            for r in control_get(hubspot_of(sandboxes), "records")["results"]}


def hubspot_of(sandboxes: Sandboxes) -> HubSpotSandbox:
    assert isinstance(sandboxes.hubspot, HubSpotSandbox)
    return sandboxes.hubspot


def salesforce_of(sandboxes: Sandboxes) -> SalesforceSandbox:
    assert isinstance(sandboxes.salesforce, SalesforceSandbox)
    return sandboxes.salesforce


def hubspot_company(sandboxes: Sandboxes, company: WorldCompany,
                    contacts: list[str]) -> str:
    """A HubSpot company at the world company's domain, as an admin makes one, with these
    contacts associated (their primary company)."""
    hubspot = hubspot_of(sandboxes)
    made = str(result(hubspot, "create_company", name=company.name,
                      domain=company.domain)["id"])
    for contact in contacts:
        result(hubspot, "associate", id=contact, company_id=made)
    return made


def hubspot_company_values(sandboxes: Sandboxes, company_id: str) -> dict[str, Any]:
    """The company's account fields as hubspot-api-client reads them."""
    hubspot = hubspot_of(sandboxes)
    client = HubSpot(access_token=hubspot.credentials["access_token"], retry=False,
                     host=hubspot.base_url)
    read = client.crm.companies.basic_api.get_by_id(
        company_id, properties=[HS_MQA, HS_GRADE, HS_REASONS])
    return dict(read.properties)


def edit_account(sandboxes: Sandboxes, account: str, **fields: str) -> None:
    """A rep saves these fields on the Salesforce Account (the control API)."""
    saved = result(salesforce_of(sandboxes), "edit_account", id=account, fields=fields)
    assert {name: saved[name] for name in fields} == fields


def record(box: HubSpotSandbox | SalesforceSandbox, record_id: str) -> dict[str, Any]:
    """One CRM record as the control API reads it."""
    found: dict[str, Any] = control_get(box, f"records/{record_id}")
    return found


#: (title, the buying role it makes, associated with the HubSpot company?) of the
#: engaged people who arrive one per run; the unassociated ones belong by their domain
ARRIVALS = (("VP Marketing", "decision_maker", True), ("Data Engineer", "user", False),
            ("Marketing Manager", "champion", False))


def arrive(sandboxes: Sandboxes, email: str, title: str, company_id: str | None) -> str:
    """A new, engaged HubSpot contact (as a form would make one); its id."""
    hubspot = hubspot_of(sandboxes)
    contact = str(result(hubspot, "create_contact", email=email, firstname="New",
                         lastname=title.split()[-1], jobtitle=title,
                         **{INTEREST: "high"})["id"])
    if company_id is not None:
        result(hubspot, "associate", id=contact, company_id=company_id)
    return contact


def accounts_plan(loaded: LoadedConfig) -> AccountPlan:
    with Runtime(loaded) as runtime:
        plan = runtime.model.account_plan
    assert plan is not None
    return plan


def account_audit(loaded: LoadedConfig, key: str) -> list[SimpleNamespace]:
    """The audit rows of one company (its key stands where a person's would), in order."""
    with Runtime(loaded) as runtime:
        return [SimpleNamespace(**row)
                for row in runtime.require_store().audit_rows(person_key=key)]


def test_third_engaged_person_makes_the_account_mqa_in_the_crm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World, state_url: str,
        sandboxes: Sandboxes, capsys: pytest.CaptureFixture[str]) -> None:
    loaded = configure(tmp_path, sandboxes, accounts_model(), monkeypatch, state_url)
    assert main(["setup", "--config", str(loaded.path)]) == 0
    assert "syncer_buying_role" in capsys.readouterr().out
    company, people = company_people(world, 4)
    key = f"domain:{company.domain}"
    salesforce = salesforce_of(sandboxes)
    sf_account = account_id(company.index)
    # the Account's website names the domain its people's addresses use, as the HubSpot
    # company's domain does: the two records are one company
    edit_account(sandboxes, sf_account, Website=f"https://www.{company.domain}/")
    contacts = hubspot_ids(sandboxes)
    hs_company = hubspot_company(sandboxes, company, [contacts[p.email] for p in people])
    first = sync_once(loaded)
    assert first.status == "succeeded"
    assert record(salesforce, sf_account)[SF_MQA] == "false"
    assert hubspot_company_values(sandboxes, hs_company)[HS_MQA] == "false"
    engaged: list[str] = []
    arrived: dict[str, str] = {}
    for n, (title, _role, linked) in enumerate(ARRIVALS):
        email = f"arrival.{n}@{company.domain}"
        arrived[email] = arrive(sandboxes, email, title, hs_company if linked else None)
        engaged.append(email)
        summary = sync_once(loaded)
        assert summary.status == "succeeded"
        account = record(salesforce, sf_account)
        hubspot = hubspot_company_values(sandboxes, hs_company)
        with Runtime(loaded) as runtime:
            with runtime.require_store().engine.connect() as connection:
                decision = account_store.decisions(connection, [key])[key]
        assert decision.engaged_people == len(engaged)
        if len(engaged) < 3:  # not before the third
            assert not decision.is_mqa
            assert account[SF_MQA] == hubspot[HS_MQA] == "false"
    assert decision.is_mqa and account[SF_MQA] == hubspot[HS_MQA] == "true"
    assert account[SF_GRADE] == hubspot[HS_GRADE] == decision.grade == "A"
    names = ", ".join(sorted(engaged))
    for reasons in (account[SF_REASONS], hubspot[HS_REASONS]):
        assert f"3 engaged people ({names})" in reasons
        assert reasons.startswith("MQA ")
    rows = account_audit(loaded, key)
    mqa_rows = [(r.connector, r.record_id, r.old_value, r.new_value, r.outcome)
                for r in rows if r.field == SF_MQA]
    assert ("salesforce", sf_account, "false", "true", "written") in mqa_rows
    hs_rows = [(r.connector, r.record_id, r.old_value, r.new_value, r.outcome)
               for r in rows if r.field == HS_MQA]
    assert ("hubspot", hs_company, "false", "true", "written") in hs_rows
    # each person's buying role from their title, on their CRM record
    for (_, role, _), contact in zip(ARRIVALS, arrived.values(), strict=True):
        assert record(hubspot_of(sandboxes), contact)["syncer_buying_role"] == role
    plan = accounts_plan(loaded)
    for person in people:
        want = buying_role(person.title, plan)
        assert record(hubspot_of(sandboxes), contacts[person.email]).get(
            "syncer_buying_role") == want
    # a quiet re-run writes nothing and adds no audit row
    quiet = sync_once(loaded)
    assert quiet.status == "succeeded"
    assert sum(quiet.fields_written.values()) == 0
    assert len(account_audit(loaded, key)) == len(rows)


def test_people_of_an_owned_account_go_to_its_owner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World,
        sandboxes: Sandboxes) -> None:
    rep = "keiko.arai@syncer-sandbox.test"
    routing = {"teams": [{"name": "global", "reps": [
        {"email": "marco.bellini@syncer-sandbox.test"},
        {"email": "samuel.osei@syncer-sandbox.test"}]}], "default_team": "global"}
    loaded = configure(tmp_path, sandboxes, accounts_model(True, routing), monkeypatch)
    assert main(["setup", "--config", str(loaded.path)]) == 0
    company, people = company_people(world, 3)
    salesforce = salesforce_of(sandboxes)
    users = {str(u["Email"]).lower(): str(u["Id"]) for u in salesforce.org.rows("User")}
    sf_account = account_id(company.index)
    edit_account(sandboxes, sf_account, Website=f"https://www.{company.domain}/",
                 OwnerId=users[rep])
    assert sync_once(loaded).status == "succeeded"
    with Runtime(loaded) as runtime:
        rows = routing_store.assignment_rows(runtime.require_store())
    routed = {r["person_key"]: r for r in rows}
    ours = [routed[p.email] for p in people if p.email in routed]
    assert ours, "the company's people were routed"
    for row in ours:
        assert row["owner_email"] == rep
        assert row["reason"] == f"account owner ({company.name}): {rep}"
    others = [r for r in rows if not r["person_key"].endswith("@" + company.domain)]
    # nobody else is sent to an account owner: the other Accounts' owner is the
    # integration user, who takes no people
    assert [r["person_key"] for r in others if r["reason"].startswith("account owner")] == []


def test_a_locked_account_write_is_parked_and_replayed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World,
        sandboxes: Sandboxes) -> None:
    loaded = configure(tmp_path, sandboxes, accounts_model(), monkeypatch)
    assert main(["setup", "--config", str(loaded.path)]) == 0
    company, _ = company_people(world, 3)
    salesforce = salesforce_of(sandboxes)
    sf_account = account_id(company.index)
    edit_account(sandboxes, sf_account, Website=f"https://www.{company.domain}/")
    result(salesforce, "lock_rows", ids=[sf_account])
    summary = sync_once(loaded)
    assert summary.status == "partial" and summary.failures["salesforce"] == 1
    assert record(salesforce, sf_account)[SF_MQA] is None
    with Runtime(loaded) as runtime:
        letters = dead_letters.open_letters(runtime.require_store(), "salesforce")
    assert [(x.record_id, x.object_type, x.person_key) for x in letters] == \
        [(sf_account, "Account", f"domain:{company.domain}")]
    result(salesforce, "unlock_rows", ids=[sf_account])
    with Runtime(loaded) as runtime:
        run_id, tally = replay_dead_letters(loaded, runtime.require_store(),
                                           runtime.connectors, NOW)
        assert dead_letters.open_letters(runtime.require_store()) == []
    assert tally.records_written["salesforce"] == 1
    assert record(salesforce, sf_account)[SF_MQA] == "false"
    replayed = [r for r in account_audit(loaded, f"domain:{company.domain}")
                if r.run_id == run_id and r.field == SF_MQA]
    assert [r.outcome for r in replayed] == ["written"]  # one row per field written


def test_a_company_that_gains_a_domain_takes_in_the_people_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World,
        sandboxes: Sandboxes) -> None:
    """A Lead (or an unassociated contact) joins a company by its email domain alone:
    when an Account's website changes to that domain, the next (incremental) run places
    the people there without any change of theirs."""
    loaded = configure(tmp_path, sandboxes, accounts_model(), monkeypatch)
    assert main(["setup", "--config", str(loaded.path)]) == 0
    company, _ = company_people(world, 3)
    key = f"domain:{company.domain}"
    # a dry run lists the account writes it would make, and stores no company's decision
    dry = sync_once(loaded, dry_run=True)
    sf_account = account_id(company.index)
    planned = [p for p in dry.planned if p.record_id == sf_account]
    assert {p.field for p in planned} == {SF_MQA, SF_GRADE, SF_REASONS,
                                          "Syncer_Account_Score__c"}
    assert all(p.reason.startswith("not MQA") for p in planned)
    with Runtime(loaded) as runtime:
        with runtime.require_store().engine.connect() as connection:
            assert account_store.decisions(connection) == {}
    assert sync_once(loaded).status == "succeeded"
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        with store.engine.connect() as connection:
            assert account_store.members_of(connection, [key]) == {key: []}
        everyone = store.person_keys()
    at_domain = sorted(k for k in everyone if k.endswith(f"@{company.domain}"))
    assert len(at_domain) >= 3
    edit_account(sandboxes, account_id(company.index), Website=f"https://{company.domain}")
    summary = sync_once(loaded)
    assert summary.status == "succeeded" and summary.people < len(everyone)
    with Runtime(loaded) as runtime:
        with runtime.require_store().engine.connect() as connection:
            members = account_store.members_of(connection, [key])[key]
            decided = account_store.decisions(connection, [key])
    assert sorted(person for person, _ in members) == at_domain
    assert key in decided
