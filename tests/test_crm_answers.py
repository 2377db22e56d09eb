"""The readers that turn a decoded CRM answer into typed records (issue 16 item 3): what
they keep, how they normalise what HubSpot or Salesforce may vary, and that an answer of
another shape fails where it arrives, naming the request and the field."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from connectors.hubspot import answers as hubspot
from connectors.hubspot.raw import answer
from connectors.salesforce import answers as salesforce
from syncer.domain.connector import ConnectorError


def test_a_contact_page_keeps_ids_properties_stamps_and_the_cursor() -> None:
    page = hubspot.contact_page({
        "total": 3, "paging": {"next": {"after": "2", "link": "x"}},
        "results": [{"id": "1", "properties": {"email": "a@x.test", "unset": None},
                     "updatedAt": "2026-12-01T10:00:00Z", "archived": False},
                    {"id": 2, "properties": {"hs_analytics_num_visits": 4}}]},
        "contacts.search")
    assert page["results"] == [
        {"id": "1", "properties": {"email": "a@x.test", "unset": None},
         "updatedAt": "2026-12-01T10:00:00Z"},
        {"id": "2", "properties": {"hs_analytics_num_visits": "4"}}]  # ids and values as text
    assert page["total"] == 3 and hubspot.next_after(page) == "2"


def test_the_last_page_has_no_cursor() -> None:
    page = hubspot.contact_page({"results": []}, "contacts.list")
    assert page == {"results": []} and hubspot.next_after(page) is None


@pytest.mark.parametrize(("body", "named"), [
    ({"results": [{"id": "1", "properties": {}}, {"properties": {}}]},
     "contacts.search: results[1].id"),
    ({"results": {"id": "1"}}, "contacts.search: results"),
    ({"results": [{"id": "1", "properties": ["email"]}]},
     "contacts.search: results[0].properties"),
])
def test_an_answer_of_another_shape_names_the_request_and_the_field(
        body: dict[str, object], named: str) -> None:
    with pytest.raises(hubspot.AnswerShapeError, match=named.replace("[", r"\[")) as raised:
        hubspot.contact_page(json.loads(json.dumps(body)), "contacts.search")
    assert isinstance(raised.value, ConnectorError)  # the run reports it, as any CRM error


def test_a_207_batch_answer_keeps_the_failed_inputs_by_context() -> None:
    data = hubspot.batch_answer({
        "status": "COMPLETE", "results": [{"id": "7", "properties": {}}],
        "errors": [{"category": "VALIDATION_ERROR", "message": "bad",
                    "context": {"ids": ["8", "9"], "propertyName": "industry"},
                    "errors": [{"in": "industry"}]}]}, "contacts.batch_update")
    assert [r["id"] for r in data["results"]] == ["7"]
    assert data["errors"] == [{"category": "VALIDATION_ERROR", "message": "bad",
                               "context": {"ids": ["8", "9"], "propertyName": ["industry"]},
                               "errors": [{"in": "industry"}]}]


def test_events_owners_and_associations() -> None:
    events = hubspot.page({"results": [{
        "id": "e1", "objectId": 42, "eventType": "e_visited_page",
        "occurredAt": "2026-12-01T10:00:00Z", "properties": {"hs_url": "/pricing"}}]},
        "events.list", hubspot.event)
    assert events["results"][0]["objectId"] == "42"
    owners = hubspot.page({"results": [{"id": "5", "email": "rep@x.test", "firstName": "R",
                                        "archived": True}]}, "owners.list", hubspot.owner)
    assert owners["results"] == [{"id": "5", "email": "rep@x.test", "firstName": "R",
                                  "lastName": None, "archived": True}]
    linked = hubspot.page({"results": [{"from": {"id": "c1"}, "to": [{"toObjectId": 3}]}]},
                          "calls.associations", hubspot.association)
    assert linked["results"] == [{"from": "c1", "to": ["3"]}]


def test_a_raw_response_is_decoded_and_must_be_an_object() -> None:
    body, status, headers = answer(SimpleNamespace(data=b'{"results": []}', status=200,
                                                   headers={"X": "1"}))
    assert (body, status, headers) == ({"results": []}, 200, {"X": "1"})
    assert answer(SimpleNamespace(data=b"", status=204, headers={}))[0] == {}
    with pytest.raises(hubspot.AnswerShapeError, match="JSON list"):
        answer(SimpleNamespace(data=b"[]", status=200, headers={}))


def test_a_soql_page_and_its_shape_errors() -> None:
    page = salesforce.query_page({"totalSize": 3, "done": False,
                                  "nextRecordsUrl": "/query/01g-2",
                                  "records": [{"Id": "00Q1", "Email": None}]}, "people")
    assert page == {"records": [{"Id": "00Q1", "Email": None}], "totalSize": 3,
                    "done": False, "nextRecordsUrl": "/query/01g-2"}
    with pytest.raises(salesforce.AnswerShapeError, match=r"people: records\[0\]"):
        salesforce.query_page({"records": ["00Q1"]}, "people")


def test_save_results_and_error_bodies() -> None:
    saved = salesforce.save_results([
        {"id": "003A", "success": True, "errors": []},
        {"id": None, "success": False, "errors": [
            {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "bad email",
             "fields": ["Email"]}]}], "create")
    assert saved == [{"id": "003A", "success": True, "errors": []},
                     {"id": None, "success": False, "errors": [
                         {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "bad email",
                          "fields": ["Email"]}]}]
    assert salesforce.save_results({"message": "not a list"}, "push") is None
    assert salesforce.first_error([{"errorCode": "INVALID_FIELD", "message": "m"}]) == (
        "INVALID_FIELD", "m")
    assert salesforce.first_error({"error": "invalid_grant"}) == ("invalid_grant", "")
    assert salesforce.first_error("Bad Gateway") == ("UNKNOWN", "")
