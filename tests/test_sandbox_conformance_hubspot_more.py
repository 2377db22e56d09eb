"""Conformance of the HubSpot endpoints the sandbox serves beyond what syncer's connector
calls (issue 20): single-record reads and writes, upsert, archive, merge, property get and
delete, deals, engagement reads, associations PUT/GET, schemas, event types, one owner.
Through the real hubspot-api-client with validation on, one test line per endpoint, as
test_sandbox_conformance_hubspot.py does for the connector's own endpoints.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator

import pytest

from tests.hubspot_conformance import (
    Body,
    Portal,
    documented,
    properties_create,
    properties_list,
    running_portal,
    search_request,
    stamped,
    undocumented,
)


@pytest.fixture
def portal() -> Iterator[Portal]:
    with running_portal() as running:
        yield running


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


def engagements_list(portal: Portal) -> None:
    page = portal.api("crm.objects", "BasicApi").get_page(
        "meetings", limit=10, properties=["hs_timestamp"], archived=False)
    (meeting,) = page.results
    stamped(meeting)
    assert meeting.id == portal.engagements["meetings"] and meeting.properties["hs_timestamp"]


def contact_companies_batch_read(portal: Portal) -> None:
    answer = portal.api("crm.associations.v4", "BatchApi").get_page(
        "contacts", "companies", portal.model(
            "crm.associations.v4", "BatchInputPublicFetchAssociationsBatchRequest",
            inputs=[portal.model("crm.associations.v4", "PublicFetchAssociationsBatchRequest",
                                 id=portal.contact)]))
    (row,) = answer.results
    assert row._from.id == portal.contact
    assert [str(to.to_object_id) for to in row.to] == [portal.company]
    assert {t.category for to in row.to for t in to.association_types} == {"HUBSPOT_DEFINED"}


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
    "GET /crm/v3/objects/meetings": engagements_list,
    "POST /crm/v3/properties/deals (+groups)": properties_create("deals"),
    "GET /crm/v3/properties/deals": properties_list("deals", "dealname", "dealstage"),
    "POST /crm/v4/associations/contacts/companies/batch/read": contact_companies_batch_read,
    "PUT+GET /crm/v4/objects/contacts/{id}/associations/companies": association_put_and_get,
    "GET /crm-object-schemas/v3/schemas": schemas_list,
    "GET /events/v3/events/event-types": event_types,
    "GET /crm/v3/owners/{id}": owner_get,
}


@pytest.mark.parametrize("endpoint", list(OTHER_ENDPOINTS))
def test_served_endpoint_conforms(portal: Portal, endpoint: str) -> None:
    OTHER_ENDPOINTS[endpoint](portal)
    documented(portal)


def test_the_checks_catch_what_they_are_for(portal: Portal) -> None:
    """The strict client refuses an answer without a required field, and `undocumented`
    names a key the document lacks: neither check passes vacuously."""
    client = portal.api("crm.contacts", "BasicApi").api_client
    record = {"id": "1", "properties": {}, "createdAt": "2026-08-12T15:00:00.000Z",
              "updatedAt": "2026-08-12T15:00:00.000Z", "archived": False}
    client.deserialize(Body(json.dumps(record)), "SimplePublicObject")
    with pytest.raises(ValueError, match="created_at"):
        client.deserialize(Body(json.dumps({**record, "createdAt": None})),
                           "SimplePublicObject")
    models = importlib.import_module("hubspot.crm.contacts").models
    assert undocumented(models, "SimplePublicObject", {**record, "made_up": 1}, "R") == [
        "R.made_up: not in SimplePublicObject"]
    assert undocumented(models, "SimplePublicObject", {**record, "id": 1}, "R") == [
        "R.id: str expected, got 1"]
