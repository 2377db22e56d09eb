"""The control API of a running sandbox (connectors/sandbox/control.py): a tester edits,
merges and moves the clock over HTTP, and the CRM's own API then shows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hubspot import HubSpot

from connectors.sandbox import build_sandbox
from connectors.sandbox.control import CONTROL_HEADER
from connectors.sandbox.world import World
from syncer.domain.connector import Sandbox
from tests.conftest import NOW


@pytest.fixture
def hubspot() -> Iterator[Sandbox]:
    sandbox = build_sandbox("hubspot", World(seed=21, size=30, now=NOW))
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def control(sandbox: Sandbox, method: str, path: str, body: dict[str, Any] | None = None,
            *, token: str | None = None) -> requests.Response:
    token = sandbox.control_token if token is None else token
    return requests.request(method, f"{sandbox.base_url}/_sandbox/{path}", json=body,
                            headers={CONTROL_HEADER: token}, timeout=10)


def api_contact(sandbox: Sandbox, record_id: str, *properties: str) -> dict[str, Any]:
    """The contact through hubspot-api-client, pointed at the sandbox (shared/specs/CLIENTS.md)."""
    api = HubSpot(access_token=sandbox.credentials["access_token"]).crm.contacts.basic_api
    api.api_client.configuration.host = sandbox.base_url
    contact = api.get_by_id(record_id, properties=list(properties))
    return dict(contact.properties)


def test_edits_and_merges_over_http_show_in_the_api(hubspot: Sandbox) -> None:
    calls_before = sum(hubspot.call_counts.values())  # type: ignore[attr-defined]
    listed = control(hubspot, "GET", "records").json()["results"]
    first, second = listed[0]["id"], listed[1]["id"]
    edited = control(hubspot, "POST", "edit", {"id": first, "field": "jobtitle",
                                               "value": "VP Revenue Operations"})
    assert edited.status_code == 200 and edited.json()["jobtitle"] == "VP Revenue Operations"
    changed = control(hubspot, "GET", "records?changed=true").json()["results"]
    assert [r["id"] for r in changed] == [first]
    # Control requests are a tester's hand, not API traffic: not counted, no faults.
    assert sum(hubspot.call_counts.values()) == calls_before  # type: ignore[attr-defined]
    assert api_contact(hubspot, first, "jobtitle")["jobtitle"] == "VP Revenue Operations"

    merged = control(hubspot, "POST", "merge", {"primary_id": first, "merged_id": second})
    assert merged.status_code == 200
    survivor = merged.json()["result"]["id"]
    assert control(hubspot, "GET", f"records/{survivor}").status_code == 200
    operations = control(hubspot, "GET", "").json()["operations"]
    assert {"POST merge", "POST form_fill", "POST webhooks"} <= set(operations)


def test_the_clock_moves_forward_and_stamps_later_edits(hubspot: Sandbox) -> None:
    record_id = control(hubspot, "GET", "records").json()["results"][0]["id"]
    before = control(hubspot, "GET", "clock").json()["now"]
    moved = control(hubspot, "POST", "clock", {"advance_seconds": 3 * 86_400})
    assert moved.status_code == 200 and moved.json()["now"][:10] > before[:10]
    control(hubspot, "POST", "edit", {"id": record_id, "field": "jobtitle", "value": "CFO"})
    stamp = api_contact(hubspot, record_id, "lastmodifieddate")["lastmodifieddate"]
    assert stamp[:10] == moved.json()["now"][:10]  # the edit is stamped on the moved clock
    backwards = control(hubspot, "POST", "clock", {"advance_seconds": -1})
    assert backwards.status_code == 400 and "only moves forward" in backwards.text


def test_it_refuses_without_the_token_and_names_bad_input(hubspot: Sandbox) -> None:
    assert control(hubspot, "GET", "records", token="").status_code == 401
    assert control(hubspot, "GET", "records", token="wrong").status_code == 401
    record_id = control(hubspot, "GET", "records").json()["results"][0]["id"]
    unknown = control(hubspot, "POST", "edit", {"id": record_id, "field": "no_such_property",
                                                "value": "x"})
    assert unknown.status_code == 400 and "no_such_property" in unknown.text
    assert control(hubspot, "POST", "edit", {"field": "jobtitle"}).status_code == 400
    assert control(hubspot, "GET", "records/999999999").status_code == 404
    assert control(hubspot, "POST", "teleport", {}).status_code == 404


@pytest.fixture
def salesforce() -> Iterator[Sandbox]:
    sandbox = build_sandbox("salesforce", World(seed=22, size=30, now=NOW))
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def sf_control(sandbox: Sandbox, method: str, path: str,
               body: dict[str, Any] | None = None) -> requests.Response:
    return requests.request(method, f"{sandbox.base_url}/_sandbox/{path}", json=body,
                            headers={CONTROL_HEADER: sandbox.control_token},
                            verify=sandbox.ca_file, timeout=10)


def test_salesforce_edits_converts_and_merges_over_http(salesforce: Sandbox) -> None:
    leads = [r for r in sf_control(salesforce, "GET", "records").json()["results"]
             if str(r["Id"]).startswith("00Q")]
    first, second, third = (str(lead["Id"]) for lead in leads[:3])
    edited = sf_control(salesforce, "POST", "edit", {"id": first, "field": "Title",
                                                     "value": "Head of RevOps"})
    assert edited.status_code == 200 and edited.json()["Title"] == "Head of RevOps"
    refused = sf_control(salesforce, "POST", "edit", {"id": first, "field": "LastName",
                                                      "value": None})
    assert refused.status_code == 400  # Salesforce's own rule: LastName is required

    converted = sf_control(salesforce, "POST", "convert", {"lead_id": first})
    assert converted.status_code == 200
    contact_id = converted.json()["result"]["contact_id"]
    assert sf_control(salesforce, "GET", f"records/{contact_id}").json()["Title"] == \
        "Head of RevOps"
    assert sf_control(salesforce, "GET", f"records/{first}").json()["IsConverted"] is True

    merged = sf_control(salesforce, "POST", "merge", {"master_id": second,
                                                      "duplicate_ids": [third]})
    assert merged.status_code == 200 and merged.json()["result"]["deleted"] == [third]
    gone = sf_control(salesforce, "GET", f"records/{third}").json()  # in the recycle bin
    assert gone["IsDeleted"] is True and gone["MasterRecordId"] == second
    assert salesforce.call_counts == {}  # type: ignore[attr-defined]  # not API traffic
