"""Companies and Accounts read from typed answers (issue 20 with issue 16 item 3): a
HubSpot company page read by answers.crm_object maps to the same Account as before, and a
Salesforce Account record syncer cannot read fails naming the field and the record."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connectors.hubspot import answers as hubspot
from connectors.hubspot.company_mapping import to_account as company_account
from connectors.salesforce.accounts import to_account as salesforce_account
from syncer.domain.connector import ConnectorError
from syncer.domain.json_values import JSONObject


def test_a_company_page_maps_to_accounts_with_owner_email_and_linked_id() -> None:
    page = hubspot.page({"results": [
        {"id": 901, "updatedAt": "2026-12-01T10:00:00Z",
         "properties": {"name": " Acme ", "domain": "https://WWW.Acme.com/about",
                        "numberofemployees": "1,200", "annualrevenue": 5000000,
                        "hubspot_owner_id": "7", "hs_lastmodifieddate": None,
                        "salesforceaccountid": "001A", "syncer_tier": "gold"}}]},
        "companies.list", hubspot.crm_object)
    account = company_account("hs", page["results"][0], ["syncer_tier"], {"7": "rep@x.test"})
    assert (account.record_id, account.name, account.domain) == ("901", "Acme", "acme.com")
    assert account.employees == 1200 and account.annual_revenue == 5_000_000.0
    assert account.owner_email == "rep@x.test"
    assert account.linked_ids == {"salesforce": "001A"}
    assert account.crm_values == {"syncer_tier": "gold"}
    # no hs_lastmodifieddate: the answer's updatedAt
    assert account.updated_at == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def test_a_company_answer_of_another_shape_names_the_request() -> None:
    with pytest.raises(ConnectorError, match=r"companies.search: results\[0\].id"):
        hubspot.page({"results": [{"properties": {}}]}, "companies.search",
                     hubspot.crm_object)


def test_a_salesforce_account_record_maps_its_nested_owner_email() -> None:
    account = salesforce_account("sf", {
        "Id": "001A", "Name": "Acme", "Website": "www.acme.com", "NumberOfEmployees": 40,
        "AnnualRevenue": "2500000", "OwnerId": "005B", "Owner": {"Email": "Rep@X.test"},
        "SystemModstamp": "2026-12-01T10:00:00.000+0000", "Tier__c": None}, ["Tier__c"])
    assert (account.record_id, account.domain, account.employees) == ("001A", "acme.com", 40)
    assert account.annual_revenue == 2_500_000.0 and account.owner_email == "rep@x.test"
    assert account.updated_at == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    assert account.crm_values == {"Tier__c": None}


@pytest.mark.parametrize(("record", "named"), [
    ({"Name": "Acme"}, "without Id"),
    ({"Id": "001A", "AnnualRevenue": "lots"}, "Account 001A's AnnualRevenue"),
    ({"Id": "001A", "AnnualRevenue": [1]}, "Account 001A's AnnualRevenue")])
def test_a_salesforce_account_record_syncer_cannot_read_names_the_field(
        record: JSONObject, named: str) -> None:
    with pytest.raises(ConnectorError, match=named):
        salesforce_account("sf", record, [])
