"""The Salesforce sandbox's Bulk API 2.0 query jobs: the real paths, states and shapes,
through simple-salesforce's own bulk2 client and raw requests."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from tests.sandbox_control import control

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
LEADS = "SELECT Id, Email, NumberOfEmployees, IsConverted, SystemModstamp FROM Lead"


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, size=300, now=NOW)


@pytest.fixture
def sandbox(world: World) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(world) as running:
        yield running


def signed_in(sandbox: SalesforceSandbox) -> tuple[Salesforce, requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_file or True
    token = session.post(f"{sandbox.base_url}/services/oauth2/token",
                         data={"grant_type": "refresh_token", **sandbox.credentials}).json()
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    sf = Salesforce(instance_url=sandbox.base_url, session_id=token["access_token"],
                    version="59.0", session=session)
    return sf, session


def jobs_url(sandbox: SalesforceSandbox, *rest: str) -> str:
    return "/".join([f"{sandbox.base_url}/services/data/v59.0/jobs/query", *rest])


def create(session: requests.Session, sandbox: SalesforceSandbox, query: str = LEADS,
           operation: str = "query") -> dict[str, Any]:
    response = session.post(jobs_url(sandbox), json={"operation": operation, "query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll_until_done(session: requests.Session, sandbox: SalesforceSandbox,
                    job_id: str) -> list[str]:
    states = []
    while not states or states[-1] not in ("JobComplete", "Failed", "Aborted"):
        states.append(session.get(jobs_url(sandbox, job_id)).json()["state"])
    return states


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_simple_salesforce_bulk2_query_reads_what_rest_query_reads(
        sandbox: SalesforceSandbox) -> None:
    sf, _ = signed_in(sandbox)
    chunks = list(sf.bulk2.Lead.query(LEADS, max_records=70, wait=0))
    bulk = [row for chunk in chunks for row in rows_of(str(chunk))]
    rest = sf.query_all(LEADS)["records"]
    assert len(chunks) == -(-len(rest) // 70) > 1  # each chunk a CSV with its header row
    assert [r["Id"] for r in bulk] == [r["Id"] for r in rest]
    first_rest, first_bulk = rest[0], bulk[0]
    assert first_bulk["Email"] == first_rest["Email"]
    assert first_bulk["IsConverted"] == str(first_rest["IsConverted"]).lower()
    assert first_bulk["NumberOfEmployees"] == ("" if first_rest["NumberOfEmployees"] is None
                                               else str(first_rest["NumberOfEmployees"]))
    # datetimes as Bulk 2.0 writes them (Z), REST with a numeric offset
    assert first_bulk["SystemModstamp"] == first_rest["SystemModstamp"].replace("+0000", "Z")
    job = next(iter(sandbox.bulk.jobs.values()))
    assert job.state == "JobComplete" and job.operation == "query" and job.object == "Lead"
    # simple-salesforce's query() never deletes its job: the caller must (syncer does)
    assert not job.deleted


def test_job_states_results_paging_and_headers(sandbox: SalesforceSandbox) -> None:
    _, session = signed_in(sandbox)
    job = create(session, sandbox)
    assert job["id"].startswith("750") and job["state"] == "UploadComplete"
    assert job["operation"] == "query" and job["object"] == "Lead"
    early = session.get(jobs_url(sandbox, job["id"], "results"))
    assert early.status_code == 400 and early.json()[0]["errorCode"] == "API_ERROR"
    assert poll_until_done(session, sandbox, job["id"]) == ["InProgress", "JobComplete"]
    info = session.get(jobs_url(sandbox, job["id"])).json()
    total = info["numberRecordsProcessed"]
    locator, seen, sets = "", [], 0
    while True:
        params: dict[str, Any] = {"maxRecords": 100, **({"locator": locator} if locator else {})}
        page = session.get(jobs_url(sandbox, job["id"], "results"), params=params)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/csv")
        assert page.text.splitlines()[0] == ('"Id","Email","NumberOfEmployees",'
                                             '"IsConverted","SystemModstamp"')
        rows = rows_of(page.text)
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(rows) <= 100
        seen.extend(r["Id"] for r in rows)
        sets += 1
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert len(seen) == len(set(seen)) == total and sets == -(-total // 100)
    again = session.get(jobs_url(sandbox, job["id"], "results"), params={"maxRecords": 100})
    assert rows_of(again.text)[0]["Id"] == seen[0]  # a set can be read again
    counted = {route for (_, route, _) in sandbox.call_counts}
    assert {"jobs/query", "jobs/query/<id>", "jobs/query/<id>/results"} <= counted


def test_abort_and_delete_follow_the_state_rules(sandbox: SalesforceSandbox) -> None:
    _, session = signed_in(sandbox)
    running = create(session, sandbox)["id"]
    refused = session.delete(jobs_url(sandbox, running))
    assert refused.status_code == 400
    assert "not terminated" in refused.json()[0]["message"]
    aborted = session.patch(jobs_url(sandbox, running), json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    gone = session.delete(jobs_url(sandbox, running))
    assert gone.status_code == 204 and gone.content == b""
    assert session.get(jobs_url(sandbox, running)).status_code == 404
    done = create(session, sandbox)["id"]
    poll_until_done(session, sandbox, done)
    late = session.patch(jobs_url(sandbox, done), json={"state": "Aborted"})
    assert late.status_code == 400  # only UploadComplete or InProgress can be aborted
    assert session.delete(jobs_url(sandbox, done)).status_code == 204
    assert all(job.deleted for job in sandbox.bulk.jobs.values())
    assert session.get(jobs_url(sandbox)).json()["records"] == []


def test_a_held_job_stays_in_progress_until_released(sandbox: SalesforceSandbox) -> None:
    _, session = signed_in(sandbox)
    sandbox.bulk.hold()
    job = create(session, sandbox)["id"]
    states = [session.get(jobs_url(sandbox, job)).json()["state"] for _ in range(3)]
    assert states == ["InProgress"] * 3
    assert [j.id for j in sandbox.bulk.open_jobs()] == [job]
    sandbox.bulk.release()
    assert session.get(jobs_url(sandbox, job)).json()["state"] == "JobComplete"


def test_failed_job_reports_why(sandbox: SalesforceSandbox) -> None:
    sf, session = signed_in(sandbox)
    sandbox.bulk.fail_next_job("Job failed: query timed out")
    job = create(session, sandbox)["id"]
    assert poll_until_done(session, sandbox, job)[-1] == "Failed"
    assert session.get(jobs_url(sandbox, job)).json()["errorMessage"] == \
        "Job failed: query timed out"
    sandbox.bulk.fail_next_job()
    with pytest.raises(SalesforceOperationError, match="Job failure"):
        list(sf.bulk2.Lead.query(LEADS, wait=0))


@pytest.mark.parametrize("query, message", [
    ("SELECT COUNT() FROM Lead", "COUNT()"),
    ("SELECT Id FROM Lead OFFSET 5", "OFFSET"),
    ("SELECT Id, NoSuchField__c FROM Lead", "No such column"),
    ("SELECT Id FROM Nothing__c", "not supported"),
])
def test_queries_bulk_2_refuses(sandbox: SalesforceSandbox, query: str, message: str) -> None:
    _, session = signed_in(sandbox)
    response = session.post(jobs_url(sandbox), json={"operation": "query", "query": query})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALIDJOB"
    assert message in response.json()[0]["message"]
    assert not sandbox.bulk.jobs


def test_query_all_keeps_merged_away_records_and_relationships_flatten(
        sandbox: SalesforceSandbox) -> None:
    sf, session = signed_in(sandbox)
    leads = sf.query("SELECT Id FROM Lead WHERE IsConverted = false")["records"]
    control(sandbox, "merge", master_id=leads[0]["Id"], duplicate_ids=[leads[1]["Id"]])
    query = "SELECT Id, IsDeleted FROM Lead"
    for operation, expected in (("query", False), ("queryAll", True)):
        job = create(session, sandbox, query, operation)["id"]
        poll_until_done(session, sandbox, job)
        rows = rows_of(session.get(jobs_url(sandbox, job, "results")).text)
        assert any(r["Id"] == leads[1]["Id"] for r in rows) is expected
    contacts = "SELECT Id, Account.Name, Account.NumberOfEmployees FROM Contact"
    job = create(session, sandbox, contacts)["id"]
    poll_until_done(session, sandbox, job)
    text = session.get(jobs_url(sandbox, job, "results")).text
    assert text.splitlines()[0] == '"Id","Account.Name","Account.NumberOfEmployees"'
    rest = {r["Id"]: r for r in sf.query_all(contacts)["records"]}
    for row in rows_of(text):
        account = rest[row["Id"]]["Account"]
        assert row["Account.Name"] == (account["Name"] if account else "")
