"""The sandbox's Composite resource (POST composite) through simple-salesforce, held to the
REST API Developer Guide ("Send Multiple Requests Using Composite"): subrequests run in
order and answer {body, httpHeaders, httpStatusCode, referenceId}; the whole series is one
call toward the API limits; at most 25 subrequests, at most 5 query operations; a
referenceId is required, unique and of letters, digits and underscores; a url outside
/services/data/vNN.N/ or an unsupported method refuses the whole request (400, a
Salesforce error list naming what is wrong); allOrNone halts the others after a failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from tests.sandbox_control import control_get

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
VERSION = "59.0"


@dataclass
class Org:
    box: SalesforceSandbox
    sf: Salesforce

    def composite(self, subrequests: list[dict[str, Any]], *,
                  all_or_none: bool = False) -> list[dict[str, Any]]:
        body = {"allOrNone": all_or_none, "compositeRequest": subrequests}
        answer = self.sf.restful("composite", method="POST", data=json.dumps(body))
        assert isinstance(answer, dict) and set(answer) == {"compositeResponse"}
        results: list[dict[str, Any]] = answer["compositeResponse"]
        return results

    def remaining(self) -> int:
        """DailyApiRequests Remaining (the limits call itself counts one)."""
        limits = self.sf.restful("limits")
        assert isinstance(limits, dict)
        return int(limits["DailyApiRequests"]["Remaining"])


def query(soql: str, reference: str, endpoint: str = "query") -> dict[str, Any]:
    return {"method": "GET", "referenceId": reference,
            "url": f"/services/data/v{VERSION}/{endpoint}/?q={quote(soql)}"}


@pytest.fixture
def org() -> Iterator[Org]:
    box = SalesforceSandbox(World(seed=11, size=500, now=NOW))
    box.start()
    session = requests.Session()
    session.verify = box.ca_file
    session.trust_env = False
    try:
        token = session.post(f"{box.base_url}/services/oauth2/token",
                             data={"grant_type": "refresh_token", **box.credentials}).json()
        yield Org(box, Salesforce(instance_url=box.base_url, session_id=token["access_token"],
                                  version=VERSION, session=session))
    finally:
        session.close()
        box.stop()


def composite_refusal(org: Org, subrequests: list[dict[str, Any]]) -> dict[str, Any]:
    """The one error of a composite refused as a whole (400)."""
    with pytest.raises(SalesforceMalformedRequest) as refused:
        org.composite(subrequests)
    content: Any = refused.value.content
    assert isinstance(content, list) and len(content) == 1
    error: dict[str, Any] = content[0]
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_five_queries_answer_in_order_as_the_plain_routes_do_and_count_one_call(
        org: Org) -> None:
    soql = ["SELECT Id FROM Lead ORDER BY Id LIMIT 3", "SELECT Id FROM Contact LIMIT 2",
            "SELECT Id, IsDeleted FROM Lead ORDER BY Id LIMIT 4",
            "SELECT COUNT() FROM Lead", "SELECT Id FROM Task LIMIT 1"]
    endpoints = ["query", "query", "queryAll", "query", "query"]
    plain = [org.sf.query(q, include_deleted=e == "queryAll") for q, e in zip(
        soql, endpoints, strict=True)]
    before = org.remaining()
    answers = org.composite([query(q, f"q{i}", e) for i, (q, e) in enumerate(
        zip(soql, endpoints, strict=True))])
    after = org.remaining()
    assert before - after == 2  # the composite, then the limits call that tells it
    assert [a["referenceId"] for a in answers] == ["q0", "q1", "q2", "q3", "q4"]
    assert [a["httpStatusCode"] for a in answers] == [200] * 5
    assert all(isinstance(a["httpHeaders"], dict) for a in answers)
    assert [a["body"] for a in answers] == plain
    # the request log shows the composite as one POST, and none of its queries
    assert org.box.call_counts[("POST", "composite", 200)] == 1
    assert sum(n for (_, route, _), n in org.box.call_counts.items()
               if route in ("query", "queryAll")) == 5  # the plain ones only


def test_a_failed_subrequest_answers_its_own_error_and_the_others_still_run(org: Org) -> None:
    answers = org.composite([query("SELECT NoSuchField__c FROM Lead", "bad"),
                             query("SELECT Id FROM Lead LIMIT 1", "good")])
    assert answers[0]["httpStatusCode"] == 400 and answers[0]["referenceId"] == "bad"
    assert answers[0]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert answers[1]["httpStatusCode"] == 200 and len(answers[1]["body"]["records"]) == 1


def test_all_or_none_halts_the_others_after_a_failure(org: Org) -> None:
    answers = org.composite([query("SELECT Id FROM Lead LIMIT 1", "before"),
                             query("SELECT NoSuchField__c FROM Lead", "bad"),
                             query("SELECT Id FROM Lead LIMIT 1", "after")], all_or_none=True)
    assert [a["httpStatusCode"] for a in answers] == [400, 400, 400]
    assert answers[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    for halted in (answers[0], answers[2]):
        assert halted["body"] == [{
            "errorCode": "PROCESSING_HALTED",
            "message": "The transaction was rolled back since another operation in the "
                       "same transaction failed."}]


def test_query_more_and_record_reads_run_inside_a_composite(org: Org) -> None:
    first = org.sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options":
                                                         "batchSize=200"})
    assert not first["done"]
    lead_id = first["records"][0]["Id"]
    answers = org.composite([
        {"method": "GET", "url": first["nextRecordsUrl"], "referenceId": "more"},
        {"method": "GET", "url": f"/services/data/v{VERSION}/sobjects/Lead/{lead_id}",
         "referenceId": "lead"},
        {**query("SELECT Id FROM Lead", "paged"),
         "httpHeaders": {"Sforce-Query-Options": "batchSize=200"}}])
    more, lead, paged = answers
    assert more["httpStatusCode"] == 200
    assert len(more["body"]["records"]) == min(200, first["totalSize"] - 200)
    assert more["body"]["records"][0]["Id"] != lead_id  # the second page
    assert lead["httpStatusCode"] == 200 and lead["body"]["Id"] == lead_id
    assert len(paged["body"]["records"]) == 200 and not paged["body"]["done"]
    nxt = org.sf.query_more(paged["body"]["nextRecordsUrl"], identifier_is_url=True)
    assert nxt["records"][0]["Id"] not in {r["Id"] for r in paged["body"]["records"]}


def test_a_patch_inside_a_composite_writes_the_record(org: Org) -> None:
    lead_id = org.sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    answers = org.composite([
        {"method": "PATCH", "url": f"/services/data/v{VERSION}/sobjects/Lead/{lead_id}",
         "referenceId": "write", "body": {"Title": "Composite Title"}},
        query(f"SELECT Title FROM Lead WHERE Id = '{lead_id}'", "read")])
    assert answers[0]["httpStatusCode"] == 204 and answers[0]["body"] is None
    assert answers[1]["body"]["records"][0]["Title"] == "Composite Title"
    assert control_get(org.box, f"records/{lead_id}")["Title"] == "Composite Title"


def test_limits_and_malformed_requests_refuse_the_whole_composite(org: Org) -> None:
    before = org.remaining()
    six = composite_refusal(org, [query("SELECT Id FROM Lead LIMIT 1", f"q{i}")
                                  for i in range(6)])
    assert six["errorCode"] == "LIMIT_EXCEEDED" and "5 query operations" in six["message"]
    lead = f"/services/data/v{VERSION}/sobjects/Lead/describe"
    many = composite_refusal(org, [{"method": "GET", "url": lead, "referenceId": f"d{i}"}
                                   for i in range(26)])
    assert many["errorCode"] == "LIMIT_EXCEEDED" and "25 subrequests" in many["message"]
    duplicate = composite_refusal(org, [query("SELECT Id FROM Lead", "same"),
                                        query("SELECT Id FROM Contact", "same")])
    assert "Duplicate referenceId 'same'" in duplicate["message"]
    missing = composite_refusal(org, [{"method": "GET", "url": lead}])
    assert "referenceId is required" in missing["message"]
    bad_id = composite_refusal(org, [{"method": "GET", "url": lead, "referenceId": "a-b"}])
    assert "'a-b'" in bad_id["message"] and "letters, numbers and underscores" in \
        bad_id["message"]
    outside = composite_refusal(org, [{"method": "GET", "url": "/services/oauth2/token",
                                       "referenceId": "x"}])
    assert "/services/oauth2/token" in outside["message"] and \
        "/services/data/vNN.N/" in outside["message"]
    method = composite_refusal(org, [{"method": "get", "url": lead, "referenceId": "x"}])
    assert "'get' is not supported" in method["message"]
    header = composite_refusal(org, [{"method": "GET", "url": lead, "referenceId": "x",
                                      "httpHeaders": {"Authorization": "Bearer other"}}])
    assert "Authorization" in header["message"]
    # each refusal is one call, and so is the limits call that tells it
    assert before - org.remaining() == 8 + 1
