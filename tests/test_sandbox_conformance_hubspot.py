"""Conformance of every HubSpot endpoint syncer's connector calls (issue 20), through
the real hubspot-api-client with `client_side_validation = True` and normal
deserialisation (model objects), one test line per endpoint.

The production connector reads these answers as raw JSON (`_preload_content=False`), so
this file is what holds the sandbox's shapes to HubSpot's OpenAPI documents: each answer
deserialises strictly and carries nothing the document lacks (tests/hubspot_conformance.py),
and each case asserts the model fields syncer reads. The other endpoints the sandbox serves
are in test_sandbox_conformance_hubspot_more.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.world import World
from tests.hubspot_conformance import (
    DANA,
    ENGAGEMENT_KINDS,
    NOW,
    Portal,
    documented,
    error_model,
    properties_create,
    properties_list,
    running_portal,
    search_request,
    stamped,
)


@pytest.fixture
def portal() -> Iterator[Portal]:
    with running_portal() as running:
        yield running


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


def batch_partial(package: str, record: Callable[[Portal], str]) -> Callable[[Portal], None]:
    """A batch naming an id the portal lacks: 207 with a StandardError per failure."""
    def case(portal: Portal) -> None:
        known = record(portal)
        batch = portal.api(package, "BatchApi")
        answer, status, _ = batch.update_with_http_info(portal.model(
            package, "BatchInputSimplePublicObjectBatchInput", inputs=[
                portal.model(package, "SimplePublicObjectBatchInput", id=i,
                             properties={"industry": "Retail"} if package.endswith(
                                 "companies") else {"jobtitle": "CFO"})
                for i in (known, "999999999")]))
        assert status == 207 and answer.status == "COMPLETE"
        assert [r.id for r in answer.results] == [known] and answer.num_errors == 1
        (error,) = answer.errors
        assert error.status == "error" and error.category == "OBJECT_NOT_FOUND"
        assert error.context["ids"] == ["999999999"] and error.message
        read, status, _ = batch.read_with_http_info(portal.model(
            package, "BatchReadInputSimplePublicObjectId", properties=[],
            properties_with_history=[], inputs=[
                portal.model(package, "SimplePublicObjectId", id=i)
                for i in (known, "999999999")]))
        assert status == 207 and [r.id for r in read.results] == [known]
        assert read.errors[0].category == "OBJECT_NOT_FOUND"
    return case


def errors(portal: Portal) -> None:
    basic = portal.api("crm.contacts", "BasicApi")
    error_model(portal, "crm.contacts", lambda: basic.get_by_id("999999999"), 404,
                "OBJECT_NOT_FOUND")
    email = portal.box.record(portal.contact)["email"]
    error_model(portal, "crm.contacts", lambda: basic.create(portal.model(
        "crm.contacts", "SimplePublicObjectInputForCreate", associations=[],
        properties={"email": email})), 409, "CONFLICT")
    error_model(portal, "crm.contacts", lambda: portal.api("crm.contacts", "SearchApi")
                .do_search(portal.model("crm.contacts", "PublicObjectSearchRequest",
                                        limit=500)), 400, "VALIDATION_ERROR")
    companies = portal.api("crm.companies", "BasicApi")
    error_model(portal, "crm.companies", lambda: companies.get_by_id("999999999"), 404,
                "OBJECT_NOT_FOUND")
    module = importlib.import_module("hubspot.crm.contacts")
    configuration = module.Configuration(host=portal.box.base_url)
    configuration.access_token = "pat-na1-not-a-token"
    configuration.client_side_validation = True
    stranger = module.BasicApi(api_client=module.ApiClient(configuration=configuration))
    portal.made.append(stranger)
    error_model(portal, "crm.contacts", lambda: stranger.get_page(limit=1), 401,
                "INVALID_AUTHENTICATION")


def rate_limited(portal: Portal) -> None:
    """A 429 past the ten-second limit is an Error with HubSpot's rate-limit extras."""
    box = HubSpotSandbox(World(seed=7, size=10, now=NOW), clock=lambda: NOW,
                         requests_per_10s=2)
    box.start()
    try:
        limited = replace(portal, box=box)
        basic = limited.api("crm.contacts", "BasicApi")
        for _ in range(2):
            assert len(basic.get_page(limit=1).results) == 1
        error_model(limited, "crm.contacts", lambda: basic.get_page(limit=1), 429,
                    "RATE_LIMITS")
        body = portal.answers[-1][2]
        assert isinstance(body, dict)
        assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    finally:
        box.stop()


CONNECTOR_ENDPOINTS: dict[str, Callable[[Portal], None]] = {
    "GET /crm/v3/objects/contacts": contacts_list,
    "POST /crm/v3/objects/contacts/search": contacts_search,
    "POST /crm/v3/objects/contacts/batch/read": contacts_batch_read,
    "POST /crm/v3/objects/contacts/batch/update": contacts_batch_update,
    "POST /crm/v3/objects/contacts/batch/create": contacts_batch_create,
    "GET /crm/v3/properties/contacts": properties_list(
        "contacts", "email", "lifecyclestage", "hubspot_owner_id", "hs_merged_object_ids"),
    "GET /crm/v3/properties/companies": properties_list(
        "companies", "name", "domain", "industry", "hubspot_owner_id", "hs_lastmodifieddate"),
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
    "POST /crm/v3/objects/contacts/batch/update+read (207)":
        batch_partial("crm.contacts", lambda portal: portal.contact),
    "POST /crm/v3/objects/companies/batch/update+read (207)":
        batch_partial("crm.companies", lambda portal: portal.company),
    "4xx answers as Error {category, correlationId, message}": errors,
    "429 answers as Error (+errorType, policyName)": rate_limited,
}


@pytest.mark.parametrize("endpoint", list(CONNECTOR_ENDPOINTS))
def test_connector_endpoint_conforms(portal: Portal, endpoint: str) -> None:
    CONNECTOR_ENDPOINTS[endpoint](portal)
    documented(portal)
