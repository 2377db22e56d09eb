"""Conformance of every HubSpot endpoint the sandbox serves (issue 20), through the real
hubspot-api-client with `client_side_validation = True` and normal deserialisation.

The client's models are generated from HubSpot's own OpenAPI documents
(shared/specs/CLIENTS.md), so a response missing a required field, or carrying a value of
the wrong type, fails here the way it would fail a strict client against HubSpot. The
production connector reads these answers as raw JSON (`_preload_content=False`), so this
file is what holds the sandbox's shapes to the documents. One test line per endpoint; the
first block is what syncer's connector calls, the second what else the sandbox serves.

The world is made as a tester would make it: companies, deals, associations and
engagements through the control API (tests/sandbox_control.py), properties through the
properties API. Each case asserts the model fields syncer reads.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.world import World
from tests.sandbox_control import result

NOW = datetime(2026, 8, 12, 15, 0, tzinfo=timezone.utc)
DANA = "dana.whitfield@syncer-sandbox.test"
ENGAGEMENT_KINDS = ("call", "meeting", "email", "note", "task")


@dataclass
class Portal:
    """A running sandbox with a realistic little world and the ids a case needs."""

    box: HubSpotSandbox
    contact: str
    other_contact: str
    company: str
    deal: str
    engagements: dict[str, str]  # "calls" -> an engagement id on `contact`
    made: list[Any]

    def api(self, package: str, name: str) -> Any:
        """A strict API object of the real client (`package` under hubspot.)."""
        module = importlib.import_module(f"hubspot.{package}")
        configuration = module.Configuration(host=self.box.base_url)
        configuration.access_token = self.box.credentials["access_token"]
        configuration.client_side_validation = True
        configuration.retries = False
        api = getattr(module, name)(api_client=module.ApiClient(configuration=configuration))
        self.made.append(api)
        return api

    def model(self, package: str, name: str, /, **values: Any) -> Any:
        """A request model of `package`, validated like the answers."""
        module = importlib.import_module(f"hubspot.{package}")
        configuration = module.Configuration()
        configuration.client_side_validation = True
        return getattr(module, name)(local_vars_configuration=configuration, **values)


@pytest.fixture
def portal() -> Iterator[Portal]:
    box = HubSpotSandbox(World(seed=7, size=40, now=NOW), clock=lambda: NOW,
                         requests_per_10s=None, search_requests_per_second=None)
    box.start()
    made: list[Any] = []
    try:
        contact, other = (str(r["id"]) for r in box.records()[:2])
        owner = next(iter(box.owner_ids().values()))
        company = str(result(box, "create_company", name="Acme", domain="acme.example",
                             industry="Software", numberofemployees="250",
                             hubspot_owner_id=owner)["id"])
        result(box, "associate", id=contact, company_id=company, primary=True)
        deal = str(result(box, "close_deal", id=contact, won=True)["id"])
        engagements = {f"{kind}s": str(result(box, "log_activity", id=contact, kind=kind,
                                               owner=DANA, subject=f"A {kind}")["id"])
                       for kind in ENGAGEMENT_KINDS}
        yield Portal(box, contact, other, company, deal, engagements, made)
    finally:
        for api in made:
            api.api_client.rest_client.pool_manager.clear()
        box.stop()


def stamped(record: Any) -> None:
    """What syncer reads of every CRM object: id, properties, both stamps, archived."""
    assert record.id and isinstance(record.properties, dict)
    assert isinstance(record.created_at, datetime) and isinstance(record.updated_at, datetime)
    assert record.created_at <= record.updated_at
    assert record.archived in (False, None)


def search_request(portal: Portal, package: str, stamp: str, *properties: str) -> Any:
    since = str(int((NOW - timedelta(days=3650)).timestamp() * 1000))
    return portal.model(package, "PublicObjectSearchRequest", filter_groups=[
        portal.model(package, "FilterGroup", filters=[portal.model(
            package, "Filter", property_name=stamp, operator="GTE", value=since)])],
        sorts=[f"{stamp}"], properties=list(properties), limit=5, after="0")


# -- what syncer's connector calls ------------------------------------------------------
def contacts_list(portal: Portal) -> None:
    page = portal.api("crm.contacts", "BasicApi").get_page(
        limit=5, properties=["email", "lifecyclestage", "hs_merged_object_ids"],
        archived=False)
    assert len(page.results) == 5 and page.paging.next.after
    for contact in page.results:
        stamped(contact)
        assert "email" in contact.properties and "lifecyclestage" in contact.properties


def contacts_search(portal: Portal) -> None:
    page = portal.api("crm.contacts", "SearchApi").do_search(search_request(
        portal, "crm.contacts", "lastmodifieddate", "email", "lastmodifieddate"))
    assert page.total > 5 and len(page.results) == 5 and page.paging.next.after
    for contact in page.results:
        stamped(contact)
        assert contact.properties["lastmodifieddate"]


def contacts_batch_read(portal: Portal) -> None:
    answer = portal.api("crm.contacts", "BatchApi").read(portal.model(
        "crm.contacts", "BatchReadInputSimplePublicObjectId", properties=["email"],
        properties_with_history=[], inputs=[
            portal.model("crm.contacts", "SimplePublicObjectId", id=i)
            for i in (portal.contact, portal.other_contact)]))
    assert answer.status == "COMPLETE" and answer.started_at and answer.completed_at
    assert {c.id for c in answer.results} == {portal.contact, portal.other_contact}
    for contact in answer.results:
        stamped(contact)
        assert contact.properties["email"]


def contacts_batch_update(portal: Portal) -> None:
    answer = portal.api("crm.contacts", "BatchApi").update(portal.model(
        "crm.contacts", "BatchInputSimplePublicObjectBatchInput", inputs=[portal.model(
            "crm.contacts", "SimplePublicObjectBatchInput", id=portal.contact,
            properties={"lifecyclestage": "marketingqualifiedlead"})]))
    assert answer.status == "COMPLETE"
    (updated,) = answer.results
    stamped(updated)
    assert updated.id == portal.contact
    assert updated.properties["lifecyclestage"] == "marketingqualifiedlead"


def contacts_batch_create(portal: Portal) -> None:
    answer = portal.api("crm.contacts", "BatchApi").create(portal.model(
        "crm.contacts", "BatchInputSimplePublicObjectBatchInputForCreate", inputs=[
            portal.model("crm.contacts", "SimplePublicObjectInputForCreate",
                         properties={"email": "new.person@conformance.test",
                                     "firstname": "New"}, associations=[])]))
    assert answer.status == "COMPLETE"
    (created,) = answer.results
    stamped(created)
    assert created.properties["email"] == "new.person@conformance.test"


def contact_properties_list(portal: Portal) -> None:
    answer = portal.api("crm.properties", "CoreApi").get_all("contacts", archived=False)
    names = {p.name for p in answer.results}
    assert {"email", "lifecyclestage", "hubspot_owner_id"} <= names
    for prop in answer.results:
        assert prop.type and prop.field_type and prop.group_name and prop.label is not None


def properties_create(object_type: str) -> Callable[[Portal], None]:
    def case(portal: Portal) -> None:
        groups = portal.api("crm.properties", "GroupsApi")
        group = groups.create(object_type, portal.model(
            "crm.properties", "PropertyGroupCreate", name="conformance", label="Checks"))
        assert (group.name, group.label) == ("conformance", "Checks")
        assert "conformance" in {g.name for g in groups.get_all(object_type).results}
        core = portal.api("crm.properties", "CoreApi")
        made = core.create(object_type, portal.model(
            "crm.properties", "PropertyCreate", name="syncer_conformance", label="Score",
            type="number", field_type="number", group_name="conformance"))
        assert (made.name, made.type, made.field_type, made.group_name) == (
            "syncer_conformance", "number", "number", "conformance")
        names = {p.name for p in core.get_all(object_type, archived=False).results}
        assert "syncer_conformance" in names
    return case


def companies_list(portal: Portal) -> None:
    page = portal.api("crm.companies", "BasicApi").get_page(
        limit=10, properties=["name", "domain", "hubspot_owner_id", "hs_lastmodifieddate"],
        archived=False)
    found = {c.id: c for c in page.results}
    acme = found[portal.company]
    stamped(acme)
    assert (acme.properties["name"], acme.properties["domain"]) == ("Acme", "acme.example")


def companies_search(portal: Portal) -> None:
    page = portal.api("crm.companies", "SearchApi").do_search(search_request(
        portal, "crm.companies", "hs_lastmodifieddate", "name", "hs_lastmodifieddate"))
    assert page.total >= 1 and portal.company in {c.id for c in page.results}
    for company in page.results:
        stamped(company)
        assert company.properties["hs_lastmodifieddate"]


def companies_batch_update(portal: Portal) -> None:
    answer = portal.api("crm.companies", "BatchApi").update(portal.model(
        "crm.companies", "BatchInputSimplePublicObjectBatchInput", inputs=[portal.model(
            "crm.companies", "SimplePublicObjectBatchInput", id=portal.company,
            properties={"industry": "Retail"})]))
    assert answer.status == "COMPLETE"
    (updated,) = answer.results
    stamped(updated)
    assert updated.properties["industry"] == "Retail"


def engagements_search(kind: str) -> Callable[[Portal], None]:
    def case(portal: Portal) -> None:
        page = portal.api("crm.objects", "SearchApi").do_search(kind, search_request(
            portal, "crm.objects", "hs_lastmodifieddate", "hs_timestamp",
            "hubspot_owner_id", "hs_lastmodifieddate"))
        assert page.total == 1 and not page.paging
        (found,) = page.results
        stamped(found)
        assert found.id == portal.engagements[kind]
        assert found.properties["hs_timestamp"] and found.properties["hubspot_owner_id"]
    return case


def engagement_associations(kind: str) -> Callable[[Portal], None]:
    def case(portal: Portal) -> None:
        answer = portal.api("crm.associations.v4", "BatchApi").get_page(
            kind, "contacts", portal.model(
                "crm.associations.v4", "BatchInputPublicFetchAssociationsBatchRequest",
                inputs=[portal.model("crm.associations.v4", "PublicFetchAssociationsBatchRequest",
                                     id=portal.engagements[kind])]))
        assert answer.status == "COMPLETE"
        (row,) = answer.results
        assert row._from.id == portal.engagements[kind]
        assert [str(to.to_object_id) for to in row.to] == [portal.contact]
        assert all(t.category and t.type_id for to in row.to for t in to.association_types)
    return case


def owners_list(portal: Portal) -> None:
    api = portal.api("crm.owners", "OwnersApi")
    for archived in (False, True):
        page = api.get_page(limit=100, archived=archived)
        for owner in page.results:
            assert owner.id and owner.archived is archived
            assert owner.created_at and owner.updated_at
            assert owner.first_name is not None and owner.last_name is not None
        if not archived:
            assert any(o.email == DANA for o in page.results)


def events_list(portal: Portal) -> None:
    page = portal.api("events", "EventsApi").get_page(
        object_type="contact", occurred_after=NOW - timedelta(days=3650), sort=["ASCENDING"],
        limit=20)
    assert page.results and page.paging.next.after
    for event in page.results:
        assert event.id and event.event_type and event.object_type.lower() == "contact"
        assert event.object_id and isinstance(event.occurred_at, datetime)
        assert isinstance(event.properties, dict)


# -- what else the sandbox serves --------------------------------------------------------
def contact_get(portal: Portal) -> None:
    contact = portal.api("crm.contacts", "BasicApi").get_by_id(
        portal.contact, properties=["email"], associations=["companies"])
    stamped(contact)
    assert contact.properties["email"]


def contact_create(portal: Portal) -> None:
    made = portal.api("crm.contacts", "BasicApi").create(portal.model(
        "crm.contacts", "SimplePublicObjectInputForCreate", associations=[],
        properties={"email": "single@conformance.test"}))
    stamped(made)
    assert made.properties["email"] == "single@conformance.test"


def contact_patch(portal: Portal) -> None:
    updated = portal.api("crm.contacts", "BasicApi").update(portal.contact, portal.model(
        "crm.contacts", "SimplePublicObjectInput", properties={"jobtitle": "CTO"}))
    stamped(updated)
    assert (updated.id, updated.properties["jobtitle"]) == (portal.contact, "CTO")


def contact_delete(portal: Portal) -> None:
    basic = portal.api("crm.contacts", "BasicApi")
    assert basic.archive(portal.other_contact) is None
    page = basic.get_page(limit=100, archived=True)
    assert portal.other_contact in {c.id for c in page.results}


def contacts_batch_upsert(portal: Portal) -> None:
    answer = portal.api("crm.contacts", "BatchApi").upsert(portal.model(
        "crm.contacts", "BatchInputSimplePublicObjectBatchInputUpsert", inputs=[
            portal.model("crm.contacts", "SimplePublicObjectBatchInputUpsert",
                         id="upserted@conformance.test", id_property="email",
                         properties={"firstname": "Upserted"})]))
    assert answer.status == "COMPLETE"
    (made,) = answer.results
    stamped(made)
    assert made.new is True and made.properties["firstname"] == "Upserted"


def contacts_batch_archive(portal: Portal) -> None:
    answer = portal.api("crm.contacts", "BatchApi").archive(portal.model(
        "crm.contacts", "BatchInputSimplePublicObjectId",
        inputs=[portal.model("crm.contacts", "SimplePublicObjectId",
                             id=portal.other_contact)]))
    assert answer is None


def contacts_merge(portal: Portal) -> None:
    merged = portal.api("crm.contacts", "BasicApi").merge(portal.model(
        "crm.contacts", "PublicMergeInput", primary_object_id=portal.contact,
        object_id_to_merge=portal.other_contact))
    stamped(merged)
    survivor = portal.api("crm.contacts", "BasicApi").get_by_id(
        merged.id, properties=["hs_merged_object_ids"])
    assert portal.other_contact in survivor.properties["hs_merged_object_ids"].split(";")


def property_get_and_delete(portal: Portal) -> None:
    properties_create("contacts")(portal)
    core = portal.api("crm.properties", "CoreApi")
    found = core.get_by_name("contacts", "syncer_conformance")
    assert (found.name, found.type) == ("syncer_conformance", "number")
    assert core.archive("contacts", "syncer_conformance") is None
    assert "syncer_conformance" not in {p.name for p in core.get_all("contacts").results}


def company_get(portal: Portal) -> None:
    acme = portal.api("crm.companies", "BasicApi").get_by_id(
        portal.company, properties=["name"], associations=["contacts"])
    stamped(acme)
    assert acme.properties["name"] == "Acme"


def deals_list(portal: Portal) -> None:
    page = portal.api("crm.deals", "BasicApi").get_page(
        limit=10, properties=["dealname", "dealstage", "closedate"], archived=False)
    deal = {d.id: d for d in page.results}[portal.deal]
    stamped(deal)
    assert deal.properties["dealstage"] and deal.properties["closedate"]


def deals_search(portal: Portal) -> None:
    page = portal.api("crm.deals", "SearchApi").do_search(search_request(
        portal, "crm.deals", "hs_lastmodifieddate", "dealstage"))
    assert portal.deal in {d.id for d in page.results}
    for deal in page.results:
        stamped(deal)


def deal_get(portal: Portal) -> None:
    deal = portal.api("crm.deals", "BasicApi").get_by_id(portal.deal, properties=["dealname"])
    stamped(deal)
    assert deal.properties["dealname"]


def engagement_get(portal: Portal) -> None:
    call = portal.api("crm.objects", "BasicApi").get_by_id(
        "calls", portal.engagements["calls"], properties=["hs_call_title"])
    stamped(call)
    assert call.properties["hs_call_title"] == "A call"


def association_put_and_get(portal: Portal) -> None:
    other = portal.other_contact
    made = portal.api("crm.associations.v4", "BasicApi").create_default(
        "contacts", other, "companies", portal.company)
    assert made.status == "COMPLETE"
    # HubSpot links both ways and answers with the spec of each direction
    pairs = {(r._from.id, r.to.id) for r in made.results}
    assert pairs == {(other, portal.company), (portal.company, other)}
    assert all(r.association_spec.association_category == "HUBSPOT_DEFINED"
               and r.association_spec.association_type_id for r in made.results)
    page = portal.api("crm.associations.v4", "BasicApi").get_page(
        "contacts", other, "companies", limit=10)
    assert [str(row.to_object_id) for row in page.results] == [portal.company]
    assert all(t.category and t.type_id for row in page.results
               for t in row.association_types)


def schemas_list(portal: Portal) -> None:
    answer = portal.api("crm.schemas", "CoreApi").get_all()
    assert isinstance(answer.results, list)


def event_types(portal: Portal) -> None:
    answer = portal.api("events", "EventsApi").get_types()
    assert answer.event_types and all(isinstance(t, str) for t in answer.event_types)


def groups_list(portal: Portal) -> None:
    answer = portal.api("crm.properties", "GroupsApi").get_all("contacts")
    assert answer.results and all(g.name and g.label is not None for g in answer.results)


def owner_get(portal: Portal) -> None:
    owner_id = next(iter(portal.box.owner_ids().values()))
    owner = portal.api("crm.owners", "OwnersApi").get_by_id(int(owner_id))
    assert (owner.id, owner.archived) == (owner_id, False) and owner.email


CONNECTOR_ENDPOINTS: dict[str, Callable[[Portal], None]] = {
    "GET /crm/v3/objects/contacts": contacts_list,
    "POST /crm/v3/objects/contacts/search": contacts_search,
    "POST /crm/v3/objects/contacts/batch/read": contacts_batch_read,
    "POST /crm/v3/objects/contacts/batch/update": contacts_batch_update,
    "POST /crm/v3/objects/contacts/batch/create": contacts_batch_create,
    "GET /crm/v3/properties/contacts": contact_properties_list,
    "POST /crm/v3/properties/contacts (+groups)": properties_create("contacts"),
    "POST /crm/v3/properties/companies (+groups)": properties_create("companies"),
    "GET /crm/v3/objects/companies": companies_list,
    "POST /crm/v3/objects/companies/search": companies_search,
    "POST /crm/v3/objects/companies/batch/update": companies_batch_update,
    **{f"POST /crm/v3/objects/{kind}s/search": engagements_search(f"{kind}s")
       for kind in ENGAGEMENT_KINDS},
    **{f"POST /crm/v4/associations/{kind}s/contacts/batch/read":
       engagement_associations(f"{kind}s") for kind in ENGAGEMENT_KINDS},
    "GET /crm/v3/owners": owners_list,
    "GET /events/v3/events": events_list,
}
OTHER_ENDPOINTS: dict[str, Callable[[Portal], None]] = {
    "GET /crm/v3/objects/contacts/{id}": contact_get,
    "POST /crm/v3/objects/contacts": contact_create,
    "PATCH /crm/v3/objects/contacts/{id}": contact_patch,
    "DELETE /crm/v3/objects/contacts/{id}": contact_delete,
    "POST /crm/v3/objects/contacts/batch/upsert": contacts_batch_upsert,
    "POST /crm/v3/objects/contacts/batch/archive": contacts_batch_archive,
    "POST /crm/v3/objects/contacts/merge": contacts_merge,
    "GET+DELETE /crm/v3/properties/contacts/{name}": property_get_and_delete,
    "GET /crm/v3/properties/contacts/groups": groups_list,
    "GET /crm/v3/objects/companies/{id}": company_get,
    "GET /crm/v3/objects/deals": deals_list,
    "POST /crm/v3/objects/deals/search": deals_search,
    "GET /crm/v3/objects/deals/{id}": deal_get,
    "GET /crm/v3/objects/calls/{id}": engagement_get,
    "PUT+GET /crm/v4/objects/contacts/{id}/associations/companies": association_put_and_get,
    "GET /crm-object-schemas/v3/schemas": schemas_list,
    "GET /events/v3/events/event-types": event_types,
    "GET /crm/v3/owners/{id}": owner_get,
}


@pytest.mark.parametrize("endpoint", list(CONNECTOR_ENDPOINTS))
def test_connector_endpoint_conforms(portal: Portal, endpoint: str) -> None:
    CONNECTOR_ENDPOINTS[endpoint](portal)


@pytest.mark.parametrize("endpoint", list(OTHER_ENDPOINTS))
def test_served_endpoint_conforms(portal: Portal, endpoint: str) -> None:
    OTHER_ENDPOINTS[endpoint](portal)
