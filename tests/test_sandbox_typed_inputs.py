"""The sandboxes read request bodies as typed JSON (issue 16 item 3): a field of the wrong
JSON shape is a 400 that names it, and changes nothing, where it used to be a 500 or was
silently misread. And no two sandbox modules import each other, not even for types."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import grimp
import pytest
import requests

from connectors.sandbox.control import CONTROL_HEADER
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.settings import SandboxConfigError, load_sandbox_file
from connectors.sandbox.world import World
from tests.test_import_cycles import _circles

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
TOKEN = {"Authorization": "Bearer hubspot-sandbox-token"}


@pytest.fixture
def hubspot() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(World(seed=31, size=20, now=NOW)) as running:
        yield running


@pytest.fixture
def salesforce() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(World(seed=32, size=40, now=NOW), clock=lambda: NOW) as running:
        yield running


def test_hubspot_names_a_list_field_that_is_no_list(hubspot: HubSpotSandbox) -> None:
    answer = requests.post(f"{hubspot.base_url}/crm/v3/objects/calls/search", headers=TOKEN,
                           json={"filterGroups": "hs_timestamp"}, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert "'filterGroups' must be a list" in answer.json()["message"]
    filters = requests.post(f"{hubspot.base_url}/crm/v3/objects/calls/search", headers=TOKEN,
                            json={"filterGroups": [{"filters": ["hs_timestamp"]}]}, timeout=10)
    assert filters.status_code == 400 and "filter must be an object" in filters.text


def test_hubspot_batch_update_refuses_properties_that_are_no_object(
        hubspot: HubSpotSandbox) -> None:
    record = hubspot.records()[0]
    answer = requests.post(f"{hubspot.base_url}/crm/v3/objects/contacts/batch/update",
                           headers=TOKEN, timeout=10,
                           json={"inputs": [{"id": record["id"], "properties": ["CFO"]}]})
    assert answer.status_code == 400, answer.text
    assert "'properties' must be an object" in answer.json()["message"]
    assert hubspot.changed_records() == []  # nothing was written
    assert hubspot.record(str(record["id"])) == record


def sf_control(box: SalesforceSandbox, operation: str, body: object) -> requests.Response:
    return requests.post(f"{box.base_url}/_sandbox/{operation}", json=body,
                         headers={CONTROL_HEADER: box.control_token},
                         verify=box.ca_file or True, timeout=10)


def test_salesforce_control_names_fields_of_the_wrong_shape(
        salesforce: SalesforceSandbox) -> None:
    lead = next(r for r in salesforce.records() if r["type"] == "Lead")
    owner = "dana.whitfield@syncer-sandbox.test"
    for operation, body, named in (
            ("log_activity", {"id": lead["Id"], "kind": "call", "owner": owner,
                              "duration_minutes": [5]}, "duration_minutes:"),
            ("merge", {"master_id": lead["Id"], "duplicate_ids": "00Q8c0000000002AAA"},
             "duplicate_ids:"),
            ("clock", {"advance_seconds": {"hours": 1}}, "advance_seconds")):
        answer = sf_control(salesforce, operation, body)
        assert answer.status_code == 400, answer.text
        assert named in answer.json()["message"]
    assert salesforce.changed_records() == []  # no Task, no merge
    assert salesforce.now() == NOW  # nor a moved clock


def test_a_limits_section_that_is_no_mapping_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.yaml"
    path.write_text("limits:\n  hubspot: 5\n")
    with pytest.raises(SandboxConfigError, match=r"limits: hubspot: expected a mapping"):
        load_sandbox_file(path)
    path.write_text("limits:\n  hubspot: {tier: free, search_cap: 500}\n"
                    "  salesforce: {daily: 5000}\n")
    _, limits = load_sandbox_file(path)
    assert (limits.hubspot.requests_per_10s, limits.hubspot.search_cap,
            limits.salesforce.daily) == (100, 500, 5000)


def test_no_two_sandbox_modules_import_each_other_even_for_types() -> None:
    """tests/test_import_cycles.py leaves out TYPE_CHECKING imports; the sandbox names what
    it needs of a sandbox by a Protocol (hubspot/portal.py, salesforce/hands.py, history's
    Recorded) instead, so its modules form no circle even counting those."""
    graph = grimp.build_graph("connectors", exclude_type_checking_imports=False,
                              cache_dir=None)
    sandbox = [group for group in _circles(graph)
               if any(module.startswith("connectors.sandbox") for module in group)]
    assert sandbox == []
