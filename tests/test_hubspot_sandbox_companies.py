"""The HubSpot sandbox's companies, deals, associations and their control operations, as
hubspot-api-client (and plain HTTP, for what the client has no method for) sees them.

Status codes and shapes follow HubSpot's API reference: 201 for a create, 204 for an
archive, 207 naming failed batch inputs in `context.ids`, error bodies with `status`,
`category`, `correlationId` and the bad property in `errors[].context.propertyName`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.companies.exceptions import ApiException
from hubspot.crm.properties import PropertyCreate

from connectors.sandbox.control import CONTROL_HEADER
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.world import World

NOW = datetime(2026, 8, 12, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    sandbox = HubSpotSandbox(World(seed=5, size=30, now=NOW), search_cap=50)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def client(sandbox: HubSpotSandbox) -> HubSpot:
    client = HubSpot(access_token=sandbox.credentials["access_token"], retry=False,
                     host=sandbox.base_url)
    for api in (client.crm.companies.basic_api, client.crm.companies.search_api,
                client.crm.companies.batch_api, client.crm.deals.basic_api,
                client.crm.deals.search_api, client.crm.deals.batch_api,
                client.crm.associations.v4.basic_api, client.crm.associations.v4.batch_api,
                client.crm.properties.core_api, client.crm.contacts.basic_api):
        api.api_client.configuration.host = sandbox.base_url
    return client


def http(sandbox: HubSpotSandbox, method: str, path: str, body: object = None,
         control: bool = False) -> tuple[int, object]:
    """One request with the token (or the control token); (status, JSON body or None)."""
    headers = {"Content-Type": "application/json"}
    if control:
        headers[CONTROL_HEADER] = sandbox.control_token
    else:
        headers["Authorization"] = f"Bearer {sandbox.credentials['access_token']}"
    request = urllib.request.Request(
        sandbox.base_url + path, method=method, headers=headers,
        data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def create(client: HubSpot, **properties: str) -> str:
    made = client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties=properties))
    return str(made.id)


def test_company_lifecycle_through_the_basic_api(client: HubSpot,
                                                 sandbox: HubSpotSandbox) -> None:
    status, body = http(sandbox, "POST", "/crm/v3/objects/companies",
                        {"properties": {"name": "Acme", "domain": "acme.com"}})
    assert status == 201 and isinstance(body, dict)
    company = str(body["id"])
    assert body["properties"]["name"] == "Acme" and body["archived"] is False
    assert {"createdate", "hs_lastmodifieddate", "hs_object_id"} <= set(body["properties"])
    read = client.crm.companies.basic_api.get_by_id(company, properties=["domain", "industry"])
    assert read.properties["domain"] == "acme.com" and read.properties["industry"] is None
    updated = client.crm.companies.basic_api.update(
        company, SimplePublicObjectInput(properties={"industry": "Retail"}))
    assert updated.properties["industry"] == "Retail"
    assert updated.updated_at > read.updated_at
    client.crm.companies.basic_api.archive(company)
    assert http(sandbox, "DELETE", f"/crm/v3/objects/companies/{company}")[0] == 204
    with pytest.raises(ApiException) as gone:
        client.crm.companies.basic_api.get_by_id(company)
    assert gone.value.status == 404
    error = json.loads(gone.value.body)
    assert error["status"] == "error" and error["category"] == "OBJECT_NOT_FOUND"
    assert error["correlationId"]
    archived = client.crm.companies.basic_api.get_by_id(company, archived=True)
    assert archived.archived is True and archived.archived_at is not None


def test_invalid_values_name_the_property(client: HubSpot, sandbox: HubSpotSandbox) -> None:
    company = create(client, name="Acme")
    status, body = http(sandbox, "PATCH", f"/crm/v3/objects/companies/{company}",
                        {"properties": {"numberofemployees": "many"}})
    assert status == 400 and isinstance(body, dict)
    assert body["category"] == "VALIDATION_ERROR" and body["correlationId"]
    assert body["errors"][0]["context"]["propertyName"] == ["numberofemployees"]
    assert body["errors"][0]["code"] == "INVALID_NUMBER"


def test_list_pages_with_after_and_archived(client: HubSpot) -> None:
    ids = [create(client, name=f"Company {i}") for i in range(5)]
    first = client.crm.companies.basic_api.get_page(limit=3, properties=["name"])
    assert [c.id for c in first.results] == ids[:3]
    rest = client.crm.companies.basic_api.get_page(limit=3, after=first.paging.next.after)
    assert [c.id for c in rest.results] == ids[3:] and rest.paging is None
    assert set(first.results[0].properties) == {"name", "createdate",
                                                "hs_lastmodifieddate", "hs_object_id"}
    client.crm.companies.basic_api.archive(ids[0])
    archived = client.crm.companies.basic_api.get_page(archived=True)
    assert [c.id for c in archived.results] == [ids[0]]


def test_search_filters_sorts_and_cap(client: HubSpot, sandbox: HubSpotSandbox) -> None:
    for i in range(60):
        create(client, name=f"Company {i:02d}", domain=f"c{i}.example",
               numberofemployees=str(i * 10))
    search = client.crm.companies.search_api.do_search
    big = search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "numberofemployees", "operator": "GTE",
                                     "value": "550"}]}],
        sorts=[{"propertyName": "name", "direction": "DESCENDING"}],
        properties=["name"], limit=10))
    assert big.total == 5
    assert [c.properties["name"] for c in big.results] == [
        f"Company {i}" for i in range(59, 54, -1)]
    status, body = http(sandbox, "POST", "/crm/v3/objects/companies/search", {
        "filters": [{"propertyName": "domain", "operator": "EQ", "value": "c7.example"},
                    {"propertyName": "numberofemployees", "operator": "EQ", "value": "70"}],
        "properties": ["domain"]})
    assert status == 200 and isinstance(body, dict) and body["total"] == 1
    status, body = http(sandbox, "POST", "/crm/v3/objects/companies/search",
                        {"after": "50", "limit": 10})
    assert status == 400 and isinstance(body, dict)
    assert body["category"] == "VALIDATION_ERROR" and "limited to 50" in body["message"]
    with pytest.raises(ApiException) as unknown:
        search(PublicObjectSearchRequest(filter_groups=[{"filters": [
            {"propertyName": "nope", "operator": "EQ", "value": "x"}]}]))
    assert unknown.value.status == 400


def test_batches_create_read_update_archive(client: HubSpot) -> None:
    batch = client.crm.companies.batch_api
    made = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        {"properties": {"name": "A", "domain": "a.example"}, "associations": []},
        {"properties": {"name": "B"}, "associations": []}]))
    ids = sorted(str(c.id) for c in made.results)
    read = batch.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": ids[0]}, {"id": "1"}], properties=["name"], properties_with_history=[]))
    assert [c.properties["name"] for c in read.results] == ["A"]
    assert read.errors[0].category == "OBJECT_NOT_FOUND" and read.errors[0].context == {
        "ids": ["1"]}
    by_domain = batch.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": "a.example"}], id_property="domain", properties=["name"],
        properties_with_history=[]))
    assert [c.id for c in by_domain.results] == [ids[0]]
    updated = batch.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        {"id": ids[0], "properties": {"country": "France"}},
        {"id": ids[1], "properties": {"annualrevenue": "lots"}}]))
    assert [c.id for c in updated.results] == [ids[0]]
    assert updated.errors[0].context == {"ids": [ids[1]]}
    batch.archive(BatchInputSimplePublicObjectId(inputs=[{"id": ids[1]}]))
    assert [c.id for c in client.crm.companies.basic_api.get_page().results] == [ids[0]]


def test_company_properties_list_create_get_delete(client: HubSpot,
                                                   sandbox: HubSpotSandbox) -> None:
    core = client.crm.properties.core_api
    names = {p.name for p in core.get_all("companies").results}
    assert {"name", "domain", "industry", "numberofemployees", "annualrevenue",
            "hs_lastmodifieddate", "salesforceaccountid", "hubspot_owner_id"} <= names
    status, _ = http(sandbox, "POST", "/crm/v3/properties/companies/groups",
                     {"name": "syncer", "label": "Syncer"})
    assert status == 201
    made = core.create("companies", PropertyCreate(
        name="syncer_account_grade", label="Grade", type="string", field_type="text",
        group_name="syncer"))
    assert made.name == "syncer_account_grade"
    assert core.get_by_name("companies", "syncer_account_grade").group_name == "syncer"
    assert "syncer_account_grade" not in {p.name for p in core.get_all("contacts").results}
    company = create(client, name="Acme", syncer_account_grade="A")
    assert client.crm.companies.basic_api.get_by_id(
        company, properties=["syncer_account_grade"]).properties["syncer_account_grade"] == "A"
    core.archive("companies", "syncer_account_grade")
    status, body = http(sandbox, "GET", "/crm/v3/properties/companies/syncer_account_grade")
    assert status == 404
    status, body = http(sandbox, "DELETE", "/crm/v3/properties/companies/domain")
    assert status == 400 and isinstance(body, dict)
    assert body["category"] == "VALIDATION_ERROR"


def test_associations_v4_and_the_primary_company(client: HubSpot,
                                                 sandbox: HubSpotSandbox) -> None:
    first, second = create(client, name="First"), create(client, name="Second")
    contact = sandbox.records()[0]["id"]
    before = sandbox.record(contact)["lastmodifieddate"]
    basic = client.crm.associations.v4.basic_api
    made = basic.create_default("contacts", contact, "companies", first)
    assert {(r.association_spec.association_type_id, r._from.id, r.to.id)
            for r in made.results} >= {(279, contact, first), (280, first, contact),
                                       (1, contact, first)}
    basic.create_default("companies", second, "contacts", contact)
    assert sandbox.record(contact)["associatedcompanyid"] == first  # the first is primary
    assert sandbox.record(contact)["lastmodifieddate"] > before
    page = basic.get_page("contacts", contact, "companies")
    assert [(r.to_object_id, sorted(t.type_id for t in r.association_types))
            for r in page.results] == [(first, [1, 279]), (second, [279])]
    read = client.crm.associations.v4.batch_api.get_page("companies", "contacts", {
        "inputs": [{"id": first}, {"id": "42"}]})
    assert [(r._from.id, [t.to_object_id for t in r.to]) for r in read.results] == [
        (first, [contact])]
    client.crm.contacts.basic_api.update(contact, {"properties": {
        "associatedcompanyid": second}})  # writing the property moves the primary
    page = basic.get_page("contacts", contact, "companies")
    assert {r.to_object_id: sorted(t.type_id for t in r.association_types)
            for r in page.results} == {first: [279], second: [1, 279]}


def test_deals_are_served_for_reading(client: HubSpot, sandbox: HubSpotSandbox) -> None:
    contact = sandbox.records()[0]["id"]
    company = create(client, name="Acme")
    status, body = http(sandbox, "POST", "/_sandbox/associate",
                        {"id": contact, "company_id": company}, control=True)
    assert status == 200
    status, body = http(sandbox, "POST", "/_sandbox/close_deal",
                        {"id": contact, "won": True, "amount": 12000}, control=True)
    assert status == 200 and isinstance(body, dict)
    deal = body["result"]["id"]
    read = client.crm.deals.basic_api.get_by_id(deal, properties=[
        "dealname", "amount", "dealstage", "pipeline", "closedate", "hs_is_closed_won"])
    assert (read.properties["dealstage"], read.properties["hs_is_closed_won"],
            read.properties["amount"]) == ("closedwon", "true", "12000")
    listed = client.crm.deals.basic_api.get_page(properties=["dealname"])
    assert [(d.id, d.properties["dealname"]) for d in listed.results] == [(deal, "Won deal")]
    found = client.crm.deals.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "dealstage", "operator": "EQ",
                                     "value": "closedwon"}]}]))
    assert [d.id for d in found.results] == [deal]
    batch = client.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": deal}], properties=["dealname"], properties_with_history=[]))
    assert [d.id for d in batch.results] == [deal]
    basic = client.crm.associations.v4.basic_api
    assert [r.to_object_id for r in basic.get_page("deals", deal, "contacts").results] == [
        contact]
    assert [r.to_object_id for r in basic.get_page("deals", deal, "companies").results] == [
        company]
    assert [r.to_object_id for r in basic.get_page("companies", company, "deals").results] == [
        deal]


def test_control_api_creates_edits_and_associates_companies(
        sandbox: HubSpotSandbox) -> None:
    owner_email = next(iter(sandbox.owner_ids()))
    status, body = http(sandbox, "POST", "/_sandbox/create_company",
                        {"name": "Acme", "domain": "acme.com", "owner": owner_email},
                        control=True)
    assert status == 200 and isinstance(body, dict)
    company = body["result"]["id"]
    stored = sandbox.api.objects.companies.get(company)
    assert stored is not None
    assert stored.properties["hubspot_owner_id"] == sandbox.owner_ids()[owner_email]
    status, body = http(sandbox, "POST", "/_sandbox/edit_company",
                        {"id": company, "field": "industry", "value": "Retail"}, control=True)
    assert status == 200 and stored.properties["industry"] == "Retail"
    status, body = http(sandbox, "POST", "/_sandbox/edit_company",
                        {"id": company, "field": "numberofemployees", "value": "x"},
                        control=True)
    assert status == 400 and isinstance(body, dict) and "numberofemployees" in body["message"]
    email = sandbox.records()[3]["email"]
    status, body = http(sandbox, "POST", "/_sandbox/associate",
                        {"email": email, "company_id": company}, control=True)
    assert status == 200 and isinstance(body, dict)
    assert body["result"]["primary_company_id"] == company
    assert sandbox.records()[3]["associatedcompanyid"] == company
    assert http(sandbox, "POST", "/_sandbox/create_company", {"name": "X"})[0] == 401


def test_contacts_single_record_patch_delete_and_upsert(sandbox: HubSpotSandbox) -> None:
    contact = sandbox.records()[0]["id"]
    status, body = http(sandbox, "PATCH", f"/crm/v3/objects/contacts/{contact}",
                        {"properties": {"jobtitle": "CTO"}})
    assert status == 200 and sandbox.record(contact)["jobtitle"] == "CTO"
    status, body = http(sandbox, "PATCH", f"/crm/v3/objects/contacts/{contact}",
                        {"properties": {"lifecyclestage": "nope"}})
    assert status == 400 and isinstance(body, dict)
    assert body["errors"][0]["context"]["propertyName"] == ["lifecyclestage"]
    known = sandbox.records()[1]["email"]
    status, body = http(sandbox, "POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
        {"id": known, "idProperty": "email", "properties": {"jobtitle": "VP"}},
        {"id": "new.person@example.org", "idProperty": "email",
         "properties": {"firstname": "New"}}]})
    assert status == 200 and isinstance(body, dict)
    assert [r["new"] for r in body["results"]] == [False, True]
    assert sandbox.records()[1]["jobtitle"] == "VP"
    assert any(r["email"] == "new.person@example.org" for r in sandbox.records())
    assert http(sandbox, "DELETE", f"/crm/v3/objects/contacts/{contact}")[0] == 204
    assert http(sandbox, "GET", f"/crm/v3/objects/contacts/{contact}")[0] == 404


def test_company_requests_are_rate_limited_like_contacts() -> None:
    world = World(seed=5, size=10, now=NOW)
    with HubSpotSandbox(world, requests_per_10s=2) as sandbox:
        statuses = [http(sandbox, "GET", "/crm/v3/objects/companies")[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        request = urllib.request.Request(
            sandbox.base_url + "/crm/v3/objects/companies",
            headers={"Authorization": f"Bearer {sandbox.credentials['access_token']}"})
        with pytest.raises(urllib.error.HTTPError) as limited:
            urllib.request.urlopen(request, timeout=10)
        assert limited.value.code == 429
        assert int(limited.value.headers["Retry-After"]) >= 1
        body = json.loads(limited.value.read())
        assert body["category"] == "RATE_LIMITS" and body["policyName"]
