"""Write failures grouped by cause and field: every error code the connectors and sandboxes
produce has a cause; a real run with bad picklist values and validation failures reads as
"N bad picklist value errors on Syncer_Stage__c (salesforce)" in the run summary, in the
metrics and in the alert."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.sandbox.faults import FaultConfig
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli.run_summary import format_summary
from syncer.domain.config import AlertsConfig, LoadedConfig
from syncer.domain.errors import (
    ALL_CAUSES,
    FIXES,
    REGISTRY,
    bounded_fields,
    cause_of,
    describe,
    failure_lines,
    flatten,
    nest,
)
from syncer.observe.metrics import SyncMetrics
from syncer.ops.alerts import Alerts, WebhookSender
from syncer.store import dead_letters
from syncer.store.repository import Store
from tests.conftest import NOW, REPO, Sandboxes, sandbox_config_data, sync_once, write_config
from tests.test_alerts import Receiver

#: Where an error code is produced: a call or keyword taking the code as a string literal.
_PRODUCED = re.compile(
    r"(?:SaveError|ApiFailure|error_response|RequestRejected|InputRejected|PushResult|"
    r"CreateResult|_Failure)\(\s*(?:[\w.\[\]]+,\s*){0,3}(?:\d{3},\s*)?\"([A-Z][A-Z_]{3,})\""
    r"|(?:error_code|category|errorCode|statusCode)\"?\s*[=:]\s*\"([A-Z][A-Z_]{3,})\""
    r"|return \(?\"([A-Z][A-Z_]{3,})\",\s")
#: Codes the connectors' own docstrings promise (per-record failures the sandboxes inject)
#: and that no literal above names.
_INJECTED = ("LOCKED", "VALIDATION_ERROR", "UNABLE_TO_LOCK_ROW",
             "FIELD_CUSTOM_VALIDATION_EXCEPTION", "INTERNAL_ERROR", "SERVER_UNAVAILABLE",
             "UNKNOWN_EXCEPTION", "RATE_LIMITS")


def produced_codes() -> set[str]:
    codes: set[str] = set()
    for path in (REPO / "connectors").rglob("*.py"):
        for match in _PRODUCED.finditer(path.read_text(encoding="utf-8")):
            codes.update(code for code in match.groups() if code)
    return codes


def test_every_code_the_connectors_and_sandboxes_produce_has_a_cause() -> None:
    codes = produced_codes()
    # The sweep finds what it should (a regex that finds nothing would pass trivially).
    assert {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_OPTION", "ENTITY_IS_DELETED",
            "CANNOT_UPDATE_CONVERTED_LEAD", "INVALID_EMAIL_ADDRESS", "UNABLE_TO_LOCK_ROW",
            "INVALID_OWNER_ID", "REQUEST_LIMIT_EXCEEDED", "INVALID_SESSION_ID"} <= codes
    known = REGISTRY.codes()  # the connectors' tables, registered by the wiring
    unmapped = sorted(code for code in codes | set(_INJECTED)
                      if code not in known and code != "UNKNOWN")
    assert unmapped == []
    assert set(known.values()) | {"other"} == ALL_CAUSES
    assert set(FIXES) == ALL_CAUSES


@pytest.mark.parametrize(("code", "fields", "cause"), [
    ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ("Industry",), "bad picklist value"),
    ("INVALID_OPTION", ("lifecyclestage",), "bad picklist value"),
    ("CANNOT_UPDATE_CONVERTED_LEAD", (), "locked or converted"),
    ("ENTITY_IS_DELETED", (), "not found"),
    ("CONFLICT", (), "validation"),
    ("INVALID_EMAIL", ("email",), "validation"),
    ("INVALID_FIELD_FOR_INSERT_UPDATE", ("Syncer_Score__c",), "permission"),
    ("READ_ONLY_VALUE", ("hs_lead_status",), "permission"),
    ("INACTIVE_OWNER_OR_USER", ("OwnerId",), "bad owner"),
    ("MALFORMED_ID", ("OwnerId",), "bad owner"),
    ("MALFORMED_ID", ("Id",), "not found"),
    ("expired_authentication", (), "auth"),
    ("UNCONFIRMED", (), "CRM unavailable"),
    ("SOMETHING_NEW", (), "other"),
    (None, (), "other"),
])
def test_causes(code: str | None, fields: tuple[str, ...], cause: str) -> None:
    assert cause_of(code, fields) == cause


def test_fields_are_bounded_and_groups_read_as_sentences() -> None:
    written = {"syncer_stage__c": "Syncer_Stage__c", "ownerid": "OwnerId"}
    assert bounded_fields(("syncer_stage__C", "Industry", "Rating"), written) == \
        ["Syncer_Stage__c", "other"]
    assert bounded_fields((), written) == [""]
    groups = {("salesforce", "bad picklist value", "Industry"): 37,
              ("salesforce", "validation", ""): 1, ("hubspot", "permission", "other"): 2,
              ("hubspot", "rate limit", ""): 1}
    assert flatten(nest(groups)) == groups
    assert flatten({"x": {"y": {"z": "3"}}, "bad": 1}) == {}
    assert describe("salesforce", "bad picklist value", "Industry", 37) == \
        "37 bad picklist value errors on Industry (salesforce)"
    assert failure_lines(groups, limit=2) == [
        "37 bad picklist value errors on Industry (salesforce)",
        "2 permission errors on fields syncer does not write (hubspot)",
        "and 2 more errors"]
    assert failure_lines(groups)[2:] == ["1 rate limit error (hubspot)",
                                         "1 validation error (salesforce)"]


# -- a real run ------------------------------------------------------------------------------

@pytest.fixture
def failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[LoadedConfig, Sandboxes]]:
    """Sandboxes where Salesforce refuses 20% of record writes by a validation rule, and a
    config whose MQL stage value is in neither CRM's picklist."""
    world = World(seed=7, size=160, now=NOW)
    boxes = Sandboxes(world, HubSpotSandbox(world),
                      SalesforceSandbox(world, faults=FaultConfig(
                          seed=4, record_failure_rate=0.2, record_lock_share=0.0)))
    boxes.hubspot.start()
    boxes.salesforce.start()
    try:
        monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
        data = sandbox_config_data(boxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
        for connector in data["connectors"]:
            connector["stage_values"]["mql"] = "Marketing Qualified"
        yield write_config(tmp_path / "syncer.yaml", data), boxes
    finally:
        boxes.hubspot.stop()
        boxes.salesforce.stop()


def samples(metrics: SyncMetrics, name: str) -> dict[tuple[str, str, str], float]:
    text = metrics.render().decode()
    return {(s.labels["connector"], s.labels["cause"], s.labels["field"]): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name}


def test_a_run_with_picklist_and_validation_failures(
        failing: tuple[LoadedConfig, Sandboxes]) -> None:
    loaded, boxes = failing
    metrics = SyncMetrics()
    summary = sync_once(loaded, metrics=metrics)

    # What failed, from the store alone: the parked writes and the values they carried.
    store = Store.open(loaded.state_url)
    try:
        letters = dead_letters.open_letters(store)
        by_code: dict[tuple[str, str], list[Any]] = {}
        for letter in letters:
            by_code.setdefault((letter.connector, str(letter.error_code)), []).append(letter)
        run = store.run(summary.run_id)
    finally:
        store.close()
    picklist_sf = by_code.pop(("salesforce", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"))
    picklist_hs = by_code.pop(("hubspot", "INVALID_OPTION"))
    validation = by_code.pop(("salesforce", "FIELD_CUSTOM_VALIDATION_EXCEPTION"))
    assert by_code == {}
    assert all(letter.fields["Syncer_Stage__c"] == "Marketing Qualified"
               for letter in picklist_sf)
    assert all(letter.fields["lifecyclestage"] == "Marketing Qualified"
               for letter in picklist_hs)
    assert len(picklist_sf) > 3 and len(picklist_hs) > 3 and len(validation) > 3
    assert {r["Id"] for r in boxes.salesforce.records()
            if r.get("Syncer_Stage__c") == "MQL"} == set()

    expected = {("salesforce", "bad picklist value", "Syncer_Stage__c"): len(picklist_sf),
                ("hubspot", "bad picklist value", "lifecyclestage"): len(picklist_hs),
                ("salesforce", "validation", ""): len(validation)}
    assert summary.failures_by_field == expected
    assert run is not None and run.status == "partial"
    assert run.stats["failures_by_field"] == nest(expected)
    assert run.stats["failures_by_cause"] == {
        "bad picklist value": len(picklist_sf) + len(picklist_hs),
        "validation": len(validation)}
    text = format_summary(summary, loaded.state_url)
    for line in (f"{len(picklist_sf)} bad picklist value errors on Syncer_Stage__c "
                 "(salesforce)",
                 f"{len(picklist_hs)} bad picklist value errors on lifecyclestage (hubspot)",
                 f"{len(validation)} validation errors (salesforce)"):
        assert f"\n    {line}" in text

    assert samples(metrics, "syncer_write_errors_total") == {
        (connector, cause, field or "none"): count
        for (connector, cause, field), count in expected.items()}

    # The alert names the causes in words, once: the same failures again are no news.
    with Receiver() as receiver:
        alerts = Alerts(AlertsConfig(), WebhookSender(receiver.url))
        store = Store.open(loaded.state_url)
        try:
            first = alerts.after_run(store, ["hubspot", "salesforce"])
            again = sync_once(loaded, metrics=metrics, full=True)  # the same writes fail again
            second = alerts.after_run(store, ["hubspot", "salesforce"])
        finally:
            store.close()
            alerts.close()
    largest = max(expected.items(), key=lambda item: item[1])[0]
    assert first == [
        f"syncer: sync of hubspot, salesforce finished with write failures (run "
        f"{summary.run_id}): {', '.join(failure_lines(expected, 3))}. Fix: "
        f"{FIXES[largest[1]]}. The records wait in `syncer dead-letters`."]
    assert "bad picklist value errors on Syncer_Stage__c (salesforce)" in first[0]
    assert "INVALID_OR_NULL" not in first[0]
    assert receiver.texts() == first
    assert again.failures_by_field[("salesforce", "bad picklist value",
                                    "Syncer_Stage__c")] == len(picklist_sf)
    assert second == []


def test_a_failed_run_alert_states_its_write_failures_by_cause(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    groups = {("salesforce", "bad picklist value", "Industry"): 37,
              ("salesforce", "permission", "Syncer_Score__c"): 2}
    at = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    store.start_run("r1", ["salesforce"], at, False)
    store.finish_run("r1", at, "failed", {"failures_by_field": nest(groups)},
                     "ConnectorError: connector salesforce: Salesforce answered 503")
    try:
        with Receiver() as receiver:
            alerts = Alerts(AlertsConfig(failed_runs_in_a_row=5), WebhookSender(receiver.url))
            sent = alerts.after_run(store, ["salesforce"])
            alerts.close()
    finally:
        store.close()
    assert sent == receiver.texts() == [
        "syncer: sync of salesforce failed (run r1): ConnectorError: connector salesforce: "
        "Salesforce answered 503. Write failures: 37 bad picklist value errors on Industry "
        "(salesforce), 2 permission errors on Syncer_Score__c (salesforce). Fix: "
        f"{FIXES['bad picklist value']}"]
