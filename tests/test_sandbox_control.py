"""The control API of a running sandbox (connectors/sandbox/control.py): a tester edits,
merges and moves the clock over HTTP, and the CRM's own API then shows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot

from connectors.sandbox import build_sandbox
from connectors.sandbox.world import World
from syncer.domain.connector import Sandbox
from tests.conftest import NOW
from tests.sandbox_control import (
    ControlRefused,
    control,
    control_get,
    control_request,
    result,
)


@pytest.fixture
def hubspot() -> Iterator[Sandbox]:
    sandbox = build_sandbox("hubspot", World(seed=21, size=30, now=NOW))
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def refusal(sandbox: Sandbox, method: str, path: str, body: dict[str, Any] | None = None,
            *, token: str | None = None) -> ControlRefused:
    """The refusal a control request must meet (it fails the test if it succeeds)."""
    with pytest.raises(ControlRefused) as refused:
        control_request(sandbox, method, path, body, token=token)
    return refused.value


def api_contact(sandbox: Sandbox, record_id: str, *properties: str) -> dict[str, Any]:
    """The contact through hubspot-api-client, pointed at the sandbox (shared/specs/CLIENTS.md)."""
    api = HubSpot(access_token=sandbox.credentials["access_token"]).crm.contacts.basic_api
    api.api_client.configuration.host = sandbox.base_url
    contact = api.get_by_id(record_id, properties=list(properties))
    return dict(contact.properties)


def test_edits_and_merges_over_http_show_in_the_api(hubspot: Sandbox) -> None:
    calls_before = sum(hubspot.call_counts.values())  # type: ignore[attr-defined]
    listed = control_get(hubspot, "records")["results"]
    first, second = listed[0]["id"], listed[1]["id"]
    edited = control(hubspot, "edit", id=first, field="jobtitle",
                     value="VP Revenue Operations")
    assert edited["jobtitle"] == "VP Revenue Operations"
    changed = control_get(hubspot, "records?changed=true")["results"]
    assert [r["id"] for r in changed] == [first]
    # Control requests are a tester's hand, not API traffic: not counted, no faults.
    assert sum(hubspot.call_counts.values()) == calls_before  # type: ignore[attr-defined]
    assert api_contact(hubspot, first, "jobtitle")["jobtitle"] == "VP Revenue Operations"

    survivor = result(hubspot, "merge", primary_id=first, merged_id=second)["id"]
    assert control_get(hubspot, f"records/{survivor}")["id"] == survivor
    operations = control_get(hubspot)["operations"]
    assert {"POST merge", "POST form_fill", "POST webhooks"} <= set(operations)


def test_the_clock_moves_forward_and_stamps_later_edits(hubspot: Sandbox) -> None:
    record_id = control_get(hubspot, "records")["results"][0]["id"]
    before = control_get(hubspot, "clock")["now"]
    moved = control(hubspot, "clock", advance_seconds=3 * 86_400)
    assert moved["now"][:10] > before[:10]
    control(hubspot, "edit", id=record_id, field="jobtitle", value="CFO")
    stamp = api_contact(hubspot, record_id, "lastmodifieddate")["lastmodifieddate"]
    assert stamp[:10] == moved["now"][:10]  # the edit is stamped on the moved clock
    backwards = refusal(hubspot, "POST", "clock", {"advance_seconds": -1})
    assert backwards.status == 400 and "only moves forward" in backwards.message


def test_it_refuses_without_the_token_and_names_bad_input(hubspot: Sandbox) -> None:
    assert refusal(hubspot, "GET", "records", token="").status == 401
    assert refusal(hubspot, "GET", "records", token="wrong").status == 401
    record_id = control_get(hubspot, "records")["results"][0]["id"]
    unknown = refusal(hubspot, "POST", "edit", {"id": record_id, "field": "no_such_property",
                                                "value": "x"})
    assert unknown.status == 400 and "no_such_property" in unknown.message
    assert refusal(hubspot, "POST", "edit", {"field": "jobtitle"}).status == 400
    assert refusal(hubspot, "GET", "records/999999999").status == 404
    assert refusal(hubspot, "POST", "teleport", {}).status == 404


@pytest.fixture
def salesforce() -> Iterator[Sandbox]:
    sandbox = build_sandbox("salesforce", World(seed=22, size=30, now=NOW))
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def test_salesforce_edits_converts_and_merges_over_http(salesforce: Sandbox) -> None:
    leads = [r for r in control_get(salesforce, "records")["results"]
             if str(r["Id"]).startswith("00Q")]
    first, second, third = (str(lead["Id"]) for lead in leads[:3])
    edited = control(salesforce, "edit", id=first, field="Title", value="Head of RevOps")
    assert edited["Title"] == "Head of RevOps"
    refused = refusal(salesforce, "POST", "edit", {"id": first, "field": "LastName",
                                                   "value": None})
    assert refused.status == 400  # Salesforce's own rule: LastName is required

    contact_id = result(salesforce, "convert", lead_id=first)["contact_id"]
    assert control_get(salesforce, f"records/{contact_id}")["Title"] == "Head of RevOps"
    assert control_get(salesforce, f"records/{first}")["IsConverted"] is True

    merged = result(salesforce, "merge", master_id=second, duplicate_ids=[third])
    assert merged["deleted"] == [third]
    gone = control_get(salesforce, f"records/{third}")  # in the recycle bin
    assert gone["IsDeleted"] is True and gone["MasterRecordId"] == second
    assert salesforce.call_counts == {}  # type: ignore[attr-defined]  # not API traffic
