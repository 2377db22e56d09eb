"""Conformance of every Salesforce endpoint syncer's connector uses (issue 20), through the
real simple-salesforce client over HTTPS.

Salesforce publishes no OpenAPI document; the shapes asserted here are the REST API
Developer Guide's (query and queryMore pages, collection SaveResults, describe, limits,
error bodies) and the Bulk API 2.0 Developer Guide's (JobInfo, result sets paged by the
Sforce-Locator and Sforce-NumberOfRecords headers), as simple-salesforce reads them. The
connector reads these answers through its own checks (connectors/salesforce/answers.py);
this file holds the sandbox to the documents, one test line per endpoint. The queries are
the connector's own SELECT lists (connectors/salesforce/mapping.py).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation, _Bulk2Client
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from connectors.salesforce.mapping import (
    CAMPAIGN_MEMBER_FIELDS,
    CONTACT_FIELDS,
    LEAD_FIELDS,
    SUCCESSION_FIELDS,
    TASK_FIELDS,
)
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
VERSION = "59.0"
#: the REST API's datetime format: milliseconds and a +0000 offset
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
ID = re.compile(r"^[0-9A-Za-z]{18}$")
SMALL_PAGE = {"Sforce-Query-Options": "batchSize=200"}


@dataclass
class Org:
    """A running sandbox and a simple-salesforce client signed in to it."""

    box: SalesforceSandbox
    sf: Salesforce
    session: requests.Session

    def url(self, object_type: str, record_id: str) -> str:
        return f"/services/data/v{VERSION}/sobjects/{object_type}/{record_id}"

    def jobs(self, object_type: str) -> _Bulk2Client:
        """The Bulk 2.0 client the connector builds (connectors/salesforce/bulk.py)."""
        handler: Any = self.sf.bulk2
        return _Bulk2Client(object_type, handler.bulk2_url, handler.headers, handler.session)

    def record(self, object_type: str, record_id: str) -> dict[str, Any]:
        """GET sobjects/{type}/{id}: the record as stored."""
        found = self.sf.restful(f"sobjects/{object_type}/{record_id}")
        assert isinstance(found, dict)
        return found

    def first_id(self, object_type: str) -> str:
        return str(self.sf.query(f"SELECT Id FROM {object_type} LIMIT 1")["records"][0]["Id"])


@pytest.fixture
def org() -> Iterator[Org]:
    box = SalesforceSandbox(World(seed=11, size=500, now=NOW))
    box.start()
    session = requests.Session()
    session.verify = box.ca_file
    session.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify otherwise
    try:
        answer = session.post(f"{box.base_url}/services/oauth2/token",
                              data={"grant_type": "refresh_token", **box.credentials})
        assert answer.status_code == 200, answer.text
        token = answer.json()
        sf = Salesforce(instance_url=box.base_url, session_id=token["access_token"],
                        version=VERSION, session=session)
        yield Org(box, sf, session)
    finally:
        session.close()
        box.stop()


def record_shape(org: Org, record: dict[str, Any], object_type: str,
                 fields: tuple[str, ...]) -> None:
    """A query record: attributes {type, url}, every selected field by its name (a
    relationship as a nested record with its own attributes, or null)."""
    assert record["attributes"] == {"type": object_type,
                                    "url": org.url(object_type, record["Id"])}
    assert ID.match(record["Id"])
    for name in fields:
        head, _, leaf = name.partition(".")
        assert head in record, f"{object_type}.{head} missing from a query record"
        if leaf and record[head] is not None:
            nested = record[head]
            assert set(nested["attributes"]) == {"type", "url"}
            assert leaf in nested
    for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
        if name in fields:
            assert STAMP.match(record[name]), f"{name} = {record[name]!r}"


def page_shape(page: dict[str, Any]) -> None:
    assert isinstance(page["totalSize"], int) and isinstance(page["done"], bool)
    assert isinstance(page["records"], list)
    if page["done"]:
        assert "nextRecordsUrl" not in page
    else:
        assert page["nextRecordsUrl"].startswith(f"/services/data/v{VERSION}/query/")


# -- sign-in ----------------------------------------------------------------------------
def oauth_token(org: Org) -> None:
    """POST oauth2/token (the refresh-token flow): the documented token response, and an
    OAuth error as {error, error_description} (not the REST error list)."""
    url = f"{org.box.base_url}/services/oauth2/token"
    form = {"grant_type": "refresh_token", **org.box.credentials}
    token = org.session.post(url, data=form).json()
    assert {"access_token", "instance_url", "id", "token_type", "issued_at",
            "signature"} <= set(token)
    assert token["token_type"] == "Bearer" and token["issued_at"].isdigit()
    assert token["id"].startswith("https://login.salesforce.com/id/")
    refused = org.session.post(url, data={**form, "refresh_token": "stale"})
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant",
                              "error_description": "expired access/refresh token"}


# -- queries ----------------------------------------------------------------------------
def query_and_more(org: Org) -> None:
    """GET query: the first page, then queryMore through nextRecordsUrl to done."""
    soql = f"SELECT {', '.join(LEAD_FIELDS)} FROM Lead"
    page = org.sf.query(soql, headers=SMALL_PAGE)
    page_shape(page)
    assert not page["done"] and len(page["records"]) == 200
    for record in page["records"]:
        record_shape(org, record, "Lead", LEAD_FIELDS)
    seen = [r["Id"] for r in page["records"]]
    while not page["done"]:
        page = org.sf.query_more(page["nextRecordsUrl"], identifier_is_url=True,
                                 headers=SMALL_PAGE)
        page_shape(page)
        seen.extend(r["Id"] for r in page["records"])
        for record in page["records"]:
            record_shape(org, record, "Lead", LEAD_FIELDS)
    assert len(seen) == len(set(seen)) == page["totalSize"]


def query_relationships(org: Org) -> None:
    """Relationship fields (Account.Name, Campaign.Type, Owner.Email) as nested records."""
    for object_type, fields in (("Contact", CONTACT_FIELDS),
                                ("CampaignMember", CAMPAIGN_MEMBER_FIELDS),
                                ("Task", TASK_FIELDS)):
        page = org.sf.query(f"SELECT {', '.join(fields)} FROM {object_type} LIMIT 50")
        page_shape(page)
        assert page["done"] and page["records"], object_type
        for record in page["records"]:
            record_shape(org, record, object_type, fields)


def query_all(org: Org) -> None:
    """GET queryAll: the succession fields, deleted rows included."""
    fields = SUCCESSION_FIELDS["Lead"]
    page = org.sf.query_all_iter(f"SELECT {', '.join(fields)} FROM Lead", include_deleted=True)
    records = list(page)
    assert records
    for record in records[:50]:
        record_shape(org, record, "Lead", fields)
        assert isinstance(record["IsDeleted"], bool) and isinstance(record["IsConverted"], bool)


def query_count_and_users(org: Org) -> None:
    """SELECT COUNT() (no records) and the owners query of the connector."""
    count = org.sf.query("SELECT COUNT() FROM Lead")
    page_shape(count)
    assert count["totalSize"] > 0 and count["records"] == []
    users = org.sf.query("SELECT Id, Email, Name, IsActive FROM User WHERE UserType = "
                         "'Standard' ORDER BY Id")
    page_shape(users)
    for user in users["records"]:
        record_shape(org, user, "User", ("Id", "Email", "Name", "IsActive"))
        assert isinstance(user["IsActive"], bool)


# -- writes -----------------------------------------------------------------------------
def save_result_shape(result: dict[str, Any]) -> None:
    """A SaveResult: {id, success, errors[{statusCode, message, fields}]}."""
    assert isinstance(result["success"], bool) and isinstance(result["errors"], list)
    if result["success"]:
        assert ID.match(result["id"]) and result["errors"] == []
    for error in result["errors"]:
        assert isinstance(error["statusCode"], str) and isinstance(error["message"], str)
        assert isinstance(error["fields"], list)


def collection_patch(org: Org) -> None:
    lead = org.first_id("Lead")
    answer = org.sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "id": lead, "Title": "VP Sales"},
            {"attributes": {"type": "Lead"}, "id": lead[:15] + "XYZ", "Title": "x"},
            {"attributes": {"type": "Lead"}, "id": lead, "Email": "not an address"}]})
    assert isinstance(answer, list) and len(answer) == 3
    for result in answer:
        save_result_shape(result)
    assert [r["success"] for r in answer] == [True, False, False]
    assert answer[0]["id"] == lead
    assert answer[2]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert answer[2]["errors"][0]["fields"] == ["Email"]
    assert org.record("Lead", lead)["Title"] == "VP Sales"
    # a field the object lacks fails the whole request (the body does not deserialise)
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        org.sf.restful("composite/sobjects", method="PATCH", json={"records": [
            {"attributes": {"type": "Lead"}, "id": lead, "NoSuchField__c": "x"}]})
    error_shape(unknown.value, "INVALID_FIELD")


def collection_post(org: Org) -> None:
    answer = org.sf.restful("composite/sobjects", method="POST", json={
        "allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "LastName": "Okafor", "Company": "Acme",
             "Email": "okafor@conformance.test"},
            {"attributes": {"type": "Lead"}, "Company": "No Name Inc"}]})
    assert isinstance(answer, list) and len(answer) == 2
    for result in answer:
        save_result_shape(result)
    made, refused = answer
    assert made["success"] and made["id"].startswith("00Q")
    assert not refused["success"] and refused.get("id") is None
    (error,) = refused["errors"]
    assert (error["statusCode"], error["fields"]) == ("REQUIRED_FIELD_MISSING", ["LastName"])
    assert org.record("Lead", made["id"])["Email"] == "okafor@conformance.test"


# -- describe, limits ---------------------------------------------------------------------
def describe(org: Org) -> None:
    for object_type in ("Lead", "Contact", "Account", "Task", "Event", "CampaignMember"):
        described = org.sf.restful(f"sobjects/{object_type}/describe")
        assert isinstance(described, dict)
        assert described["name"] == object_type and described["label"]
        for key in ("createable", "updateable", "queryable"):
            assert isinstance(described[key], bool), (object_type, key)
        assert isinstance(described["keyPrefix"], str) and isinstance(described["urls"], dict)
        assert described["fields"], object_type
        for field in described["fields"]:
            assert isinstance(field["name"], str) and isinstance(field["type"], str)
            assert isinstance(field["label"], str) and isinstance(field["length"], int)
            for key in ("updateable", "createable", "nillable", "restrictedPicklist"):
                assert isinstance(field[key], bool), (object_type, field["name"], key)
            assert isinstance(field["picklistValues"], list)
            for value in field["picklistValues"]:
                assert isinstance(value["value"], str) and isinstance(value["active"], bool)
        names = {f["name"] for f in described["fields"]}
        assert "Id" in names and "SystemModstamp" in names


def limits(org: Org) -> None:
    answer: dict[str, Any] = org.sf.limits()
    daily = answer["DailyApiRequests"]
    assert isinstance(daily["Max"], int) and 0 <= daily["Remaining"] <= daily["Max"]
    assert isinstance(answer["DailyBulkV2QueryJobs"]["Remaining"], int)
    org.sf.query("SELECT Id FROM Lead LIMIT 1")  # Sforce-Limit-Info: api-usage=used/max
    usage = org.sf.api_usage["api-usage"]
    assert 0 < usage.used <= usage.total == daily["Max"]


# -- Bulk API 2.0 ----------------------------------------------------------------------
JOB_INFO = {"id", "operation", "object", "createdById", "createdDate", "systemModstamp",
            "state", "concurrencyMode", "contentType", "apiVersion", "lineEnding",
            "columnDelimiter"}


def bulk_query(org: Org) -> None:
    jobs = org.jobs("Lead")
    made = jobs.create_job(Operation.query, f"SELECT {', '.join(LEAD_FIELDS)} FROM Lead")
    assert set(made) >= JOB_INFO, JOB_INFO - set(made)
    assert (made["operation"], made["object"], made["contentType"]) == ("query", "Lead", "CSV")
    assert made["state"] == "UploadComplete" and STAMP.match(made["createdDate"])
    info = jobs.get_job(made["id"], True)
    while info["state"] not in ("JobComplete", "Failed", "Aborted"):
        info = jobs.get_job(made["id"], True)
    assert info["state"] == "JobComplete" and info["jobType"] == "V2Query"
    assert isinstance(info["numberRecordsProcessed"], int)
    assert isinstance(info["retries"], int) and isinstance(info["totalProcessingTime"], int)
    rows, locator, sets = 0, "", 0
    while True:
        # simple-salesforce reads the Sforce-Locator and Sforce-NumberOfRecords headers
        result = jobs.get_query_results(made["id"], locator, 200)
        table = list(csv.DictReader(io.StringIO(result["records"])))
        assert len(table) == result["number_of_records"] <= 200
        assert all(set(row) == set(LEAD_FIELDS) for row in table)
        rows, sets, locator = rows + len(table), sets + 1, result["locator"]
        if not locator:
            break
    assert rows == info["numberRecordsProcessed"] and sets > 1
    # the headers themselves: a count, and the string "null" after the last set
    url = f"{org.box.base_url}/services/data/v{VERSION}/jobs/query/{made['id']}/results"
    auth = {"Authorization": f"Bearer {org.sf.session_id}"}
    first = org.session.get(url, params={"maxRecords": 200}, headers=auth)
    last = org.session.get(url, params={"maxRecords": rows}, headers=auth)
    assert first.headers["Content-Type"].startswith("text/csv")
    assert first.headers["Sforce-NumberOfRecords"] == "200"
    assert first.headers["Sforce-Locator"] not in ("", "null")
    assert (last.headers["Sforce-NumberOfRecords"], last.headers["Sforce-Locator"]) == (
        str(rows), "null")


def bulk_job_close(org: Org) -> None:
    """Abort (PATCH state) and delete, as the connector closes a job it leaves."""
    jobs = org.jobs("Lead")
    made = jobs.create_job(Operation.query, "SELECT Id FROM Lead")
    info = jobs.get_job(made["id"], True)
    while info["state"] not in ("JobComplete", "Failed", "Aborted"):
        info = jobs.get_job(made["id"], True)
    answer = org.session.delete(
        f"{org.box.base_url}/services/data/v{VERSION}/jobs/query/{made['id']}",
        headers={"Authorization": f"Bearer {org.sf.session_id}"})
    assert answer.status_code == 204 and not answer.content
    with pytest.raises(SalesforceResourceNotFound) as gone:
        jobs.get_job(made["id"], True)
    error_shape(gone.value, "NOT_FOUND")


# -- errors -------------------------------------------------------------------------------
def error_shape(error: SalesforceError, code: str) -> None:
    """Errors are a JSON list of {message, errorCode[, fields]}."""
    content: Any = error.content
    assert isinstance(content, list) and len(content) == 1
    (body,) = content
    assert body["errorCode"] == code and isinstance(body["message"], str) and body["message"]
    assert isinstance(body.get("fields", []), list)


def errors(org: Org) -> None:
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        org.sf.query("SELECT Id FROM Lead WHERE")
    error_shape(malformed.value, "MALFORMED_QUERY")
    with pytest.raises(SalesforceMalformedRequest) as invalid:
        org.sf.query("SELECT NoSuchField__c FROM Lead")
    error_shape(invalid.value, "INVALID_FIELD")
    with pytest.raises(SalesforceResourceNotFound) as missing:
        org.sf.restful("sobjects/NoSuchObject__c/describe")
    error_shape(missing.value, "NOT_FOUND")
    expired = Salesforce(instance_url=org.box.base_url, session_id="not-a-session",
                         version=VERSION, session=org.session)
    with pytest.raises(SalesforceExpiredSession) as unsigned:
        expired.query("SELECT Id FROM Lead LIMIT 1")
    error_shape(unsigned.value, "INVALID_SESSION_ID")


ENDPOINTS: dict[str, Callable[[Org], None]] = {
    "POST oauth2/token": oauth_token,
    "GET query + queryMore (nextRecordsUrl)": query_and_more,
    "GET query (relationship fields)": query_relationships,
    "GET queryAll": query_all,
    "GET query (COUNT(), User)": query_count_and_users,
    "PATCH composite/sobjects": collection_patch,
    "POST composite/sobjects": collection_post,
    "GET sobjects/{type}/describe": describe,
    "GET limits + Sforce-Limit-Info": limits,
    "POST+GET jobs/query, GET results (Sforce-Locator)": bulk_query,
    "DELETE jobs/query/{id}": bulk_job_close,
    "errors as [{message, errorCode, fields}]": errors,
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_endpoint_conforms(org: Org, endpoint: str) -> None:
    ENDPOINTS[endpoint](org)
