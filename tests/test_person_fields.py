"""Mapped person fields (`connectors[].person_fields`): validated in the config, read by
both connectors through the real clients in the calls they already make, and refused with
the fix when the CRM lacks one. Expectations come from the World."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.salesforce import mapping as sf_mapping
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.hubspot.state import contact_id_for
from connectors.sandbox.outcomes import SOURCE_BY_KEY
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli import main
from syncer.domain.config import parse_config
from syncer.domain.config_base import ConfigError
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import ActivityType

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NO_WAIT = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, sleep=lambda _: None)
EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "syncer.example.yaml"


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, size=180, now=NOW)


@pytest.fixture(scope="module")
def hubspot(world: World) -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(world) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def salesforce(world: World) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(world) as sandbox:
        yield sandbox


def settings(sandbox: Any, kind: str, **person_fields: str | None) -> ConnectorSettings:
    return ConnectorSettings(name=kind, kind=kind, base_url=sandbox.base_url,
                             credentials=dict(sandbox.credentials), ca_file=sandbox.ca_file,
                             timeout_seconds=10.0, options={"retry_policy": NO_WAIT},
                             person_fields=person_fields)


# -- config --------------------------------------------------------------------------------
def config_with(person_fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["connectors"][0]["person_fields"] = person_fields
    return data


def test_config_takes_mapped_fields_and_refuses_bad_names_with_path_and_fix() -> None:
    loaded = parse_config(config_with({"occupation": "occupation", "visits": None}), EXAMPLE)
    assert loaded.config.connectors[0].person_fields == {"occupation": "occupation",
                                                         "visits": None}
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"Lead Source": "x", "title": "jobtitle", "empty": " "}),
                     EXAMPLE)
    text = str(caught.value)
    assert "connectors[0] (name: hubspot).person_fields" in text
    assert "'Lead Source' is not a usable field name. Fix: lowercase" in text
    assert "'title' is a standard person field" in text and "crm_title" in text
    assert "empty: the CRM field name is empty" in text
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with({"stage_now": "lifecyclestage"}), EXAMPLE)
    assert "person_fields stage_now: lifecyclestage: syncer writes that field" in \
        str(caught.value)


# -- HubSpot -------------------------------------------------------------------------------
def test_hubspot_contacts_carry_source_and_visit_counts(world: World,
                                                        hubspot: HubSpotSandbox) -> None:
    with closing(HubSpotConnector(settings(hubspot, "hubspot"))) as connector:
        pages = list(connector.people())
        assert connector.api_calls == len(pages)  # read in the same list calls
    people = {p.record_id: p for page in pages for p in page}
    assert people
    for person in (p for p in world.people() if p.in_hubspot):
        outcome = world.outcome_of(person)
        got = people[contact_id_for(person.index)].properties
        reached = outcome.at.replace(microsecond=outcome.at.microsecond // 1000 * 1000
                                     ).isoformat() if outcome.at else None
        assert got == {"source": SOURCE_BY_KEY[person.source].hubspot,
                       "latest_source": outcome.latest_source.hubspot,
                       "visits": float(outcome.visits),
                       "page_views": float(outcome.page_views),
                       "opportunity_at": reached,
                       "customer_at": reached if outcome.stage == "customer" else None}
        views = [a for a in person.activities
                 if a.type in (ActivityType.PAGE_VIEW, ActivityType.PRICING_PAGE_VIEW)]
        assert outcome.page_views == len(views) >= outcome.visits


def test_hubspot_page_views_and_webinars_carry_a_duration(hubspot: HubSpotSandbox) -> None:
    with closing(HubSpotConnector(settings(hubspot, "hubspot"))) as connector:
        got = [a for page in connector.activities(NOW - timedelta(days=400)) for a in page]
    views = [a for a in got if a.type is ActivityType.PAGE_VIEW]
    attended = [a for a in got if a.type is ActivityType.WEBINAR_ATTENDANCE]
    assert views and attended
    assert all(int(a.attributes["duration"]) > 0 for a in views)
    assert all(5 <= int(a.attributes["duration"]) <= 60 for a in attended)  # minutes


def test_hubspot_mapping_overrides_and_drops_defaults(hubspot: HubSpotSandbox) -> None:
    chosen = settings(hubspot, "hubspot", visits=None, origin="hs_analytics_source",
                      stage_now="lifecyclestage")
    with closing(HubSpotConnector(chosen)) as connector:
        person = next(iter(next(connector.people())))
    assert set(person.properties) == {"source", "latest_source", "page_views", "origin",
                                      "stage_now", "opportunity_at", "customer_at"}
    assert person.properties["origin"] == person.properties["source"]
    assert isinstance(person.properties["stage_now"], str)  # not a number property


def test_hubspot_refuses_a_property_the_portal_lacks(hubspot: HubSpotSandbox) -> None:
    lacking = settings(hubspot, "hubspot", occupation="occupation_x")
    with closing(HubSpotConnector(lacking)) as connector:
        assert connector.person_field_problems() == [
            "connector 'hubspot': HubSpot has no contact property 'occupation_x' (person "
            "field 'occupation'). Fix: correct connectors[].person_fields.occupation, create "
            "the property in HubSpot, or set `occupation: null` to drop a default mapping"]
        with pytest.raises(ConnectorError, match="no contact property 'occupation_x'"):
            list(connector.people())
    with closing(HubSpotConnector(settings(hubspot, "hubspot"))) as connector:
        assert connector.person_field_problems() == []


# -- Salesforce ----------------------------------------------------------------------------
def test_salesforce_leads_and_contacts_carry_lead_source(world: World,
                                                         salesforce: SalesforceSandbox) -> None:
    with SalesforceConnector(settings(salesforce, "salesforce"), retry=NO_WAIT) as connector:
        people = [p for page in connector.people() for p in page]
        # a token, two describes and one page per object: no call for the mapped fields
        assert connector.api_calls == 5
    by_email = {p.email: p for p in people}
    expected = {p.email: SOURCE_BY_KEY[p.source].salesforce
                for p in world.people() if p.in_salesforce}
    assert {email: by_email[email].properties for email in expected} == {
        email: {"source": source} for email, source in expected.items()}
    assert {p.object_type for p in people} == {"Lead", "Contact"}


def test_salesforce_numbers_stay_numbers_and_page_views_carry_seconds(
        salesforce: SalesforceSandbox) -> None:
    chosen = settings(salesforce, "salesforce", lead_source="LeadSource")
    with SalesforceConnector(chosen, retry=NO_WAIT) as connector:
        leads = [p for page in connector.people() for p in page if p.object_type == "Lead"]
        views = [a for page in connector.activities(NOW - timedelta(days=400))
                 for a in page if a.type is ActivityType.PAGE_VIEW]
    assert all(p.properties["lead_source"] == p.properties["source"] for p in leads)
    assert views and all(int(a.attributes["duration"]) > 0 for a in views)
    record = {"Id": "00Q1", "NumberOfEmployees": 250, "Rating__c": 4.5, "Hot__c": True,
              "Occupation__c": "  ", "LeadSource": " Web "}
    person = sf_mapping.to_person("sf", "Lead", record, (), {
        "size": "NumberOfEmployees", "rating": "Rating__c", "hot": "Hot__c",
        "occupation": "Occupation__c", "source": "LeadSource", "gone": "Gone__c"})
    assert person.properties == {"size": 250, "rating": 4.5, "hot": True, "occupation": None,
                                 "source": "Web", "gone": None}


def test_salesforce_refuses_a_field_lead_or_contact_lacks(
        salesforce: SalesforceSandbox) -> None:
    chosen = settings(salesforce, "salesforce", occupation="Occupation__c")
    with SalesforceConnector(chosen, retry=NO_WAIT) as connector:
        problems = connector.person_field_problems()
        assert [p.split(" has no")[0] for p in problems] == [
            "connector 'salesforce': Salesforce Lead",
            "connector 'salesforce': Salesforce Contact"]
        assert "person_fields.occupation" in problems[0]
        with pytest.raises(ConnectorError, match="Lead has no field 'Occupation__c'"):
            list(connector.people())


def test_check_config_names_a_mapped_field_the_crm_lacks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = config_with({"occupation": "occupation_x"})
    data["model"] = str(EXAMPLE.parent / "model.example.yaml")
    data["connectors"][1]["person_fields"] = {"source": "Lead_Source__c"}
    data["sandbox"] = {"seed": 3, "people": 40}
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "3 problems in the configuration" in err
    assert "HubSpot has no contact property 'occupation_x' (person field 'occupation')" in err
    assert "Salesforce Lead has no field 'Lead_Source__c'" in err
    assert "Salesforce Contact has no field 'Lead_Source__c'" in err
