"""Fault injection in both sandbox CRMs, seen through the real client libraries.

Each fault is shown with its rate at 1 (so the test is exact), then mixed faults are shown
to be reproducible from the seed, and the real connectors are shown to get through
retryable faults. The sandbox's own record of what it injected is checked every time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.contacts.exceptions import ApiException
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.faults import (
    FaultConfig,
    FaultInjector,
    HubSpotLimits,
    SandboxConfigError,
    load_sandbox_file,
    parse_burst,
)
from connectors.sandbox.hubspot.server import NO_ANSWER, HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorSettings
from tests.test_hubspot_sandbox import Clients

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
NO_WAIT = RetryPolicy(attempts=8, initial=0.01, maximum=0.02, sleep=lambda _: None)
BATCH_RULE = "/crm/v3/objects/<object_type>/batch/update"


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=13, size=150, now=NOW)


def hubspot(world: World, **faults: Any) -> HubSpotSandbox:
    sandbox = HubSpotSandbox(world, faults=FaultConfig(**faults))
    sandbox.start()
    return sandbox


@pytest.fixture
def hubspot_box(request: pytest.FixtureRequest, world: World) -> Iterator[HubSpotSandbox]:
    sandbox = hubspot(world, **request.param)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def salesforce_box(request: pytest.FixtureRequest,
                   world: World) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(world, faults=FaultConfig(**request.param)) as sandbox:
        yield sandbox


def sf_client(sandbox: SalesforceSandbox) -> Salesforce:
    session = requests.Session()
    session.verify = sandbox.ca_file
    session.trust_env = False
    token = session.post(sandbox.base_url + "/services/oauth2/token",
                         data={"grant_type": "refresh_token", **sandbox.credentials})
    assert token.status_code == 200
    return Salesforce(instance_url=sandbox.base_url, session_id=token.json()["access_token"],
                      version="59.0", session=session)


def batch(*inputs: tuple[str, dict[str, Any]]) -> BatchInputSimplePublicObjectBatchInput:
    return BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=record_id, properties=props)
        for record_id, props in inputs])


def leads(sandbox: SalesforceSandbox, count: int) -> list[dict[str, Any]]:
    found = [r for r in sandbox.records() if r["type"] == "Lead"]
    assert len(found) >= count
    return found[:count]


# -- configuration ----------------------------------------------------------------------
def test_fault_config_refuses_what_it_cannot_use() -> None:
    with pytest.raises(SandboxConfigError, match=r"error_rate: 1\.5 is not a probability"):
        FaultConfig(error_rate=1.5)
    with pytest.raises(SandboxConfigError, match="EVERY:LENGTH"):
        FaultConfig(burst_every=3, burst_length=5)
    with pytest.raises(SandboxConfigError, match=r"unknown fault setting\(s\) \['eror_rate'\]"):
        FaultConfig.from_mapping({"eror_rate": 0.1})
    with pytest.raises(SandboxConfigError, match="latency_ms: 'slow' is not a number"):
        FaultConfig.from_mapping({"latency_ms": "slow"})
    assert parse_burst("50:5") == (50, 5)
    with pytest.raises(SandboxConfigError, match="--fault-429-burst"):
        parse_burst("fifty")
    assert not FaultConfig().enabled and FaultConfig(editor_rate=0.1).enabled


def test_tiers_and_yaml_file(tmp_path: Path) -> None:
    assert (HubSpotLimits.for_tier("starter").requests_per_10s,
            HubSpotLimits.for_tier("starter").daily) == (100, 250_000)
    assert (HubSpotLimits.for_tier("professional").requests_per_10s,
            HubSpotLimits.for_tier("professional").daily) == (190, 625_000)
    assert HubSpotLimits.for_tier("enterprise").daily == 1_000_000
    with pytest.raises(SandboxConfigError, match="unknown tier 'gold'"):
        HubSpotLimits.for_tier("gold")
    path = tmp_path / "faults.yaml"
    path.write_text("faults:\n  seed: 7\n  error_rate: 0.2\n  burst_every: 50\n"
                    "  burst_length: 5\nlimits:\n  hubspot: {tier: free, search_cap: 500}\n"
                    "  salesforce: {daily: 5000, query_batch: 1000}\n")
    faults, limits = load_sandbox_file(path)
    assert (faults.seed, faults.error_rate, faults.burst_every) == (7, 0.2, 50)
    assert (limits.hubspot.requests_per_10s, limits.hubspot.search_cap) == (100, 500)
    assert (limits.salesforce.daily, limits.salesforce.query_batch) == (5000, 1000)
    path.write_text("faults:\n  drop: 0.5\n")
    with pytest.raises(SandboxConfigError, match=r"faults.yaml: faults: unknown"):
        load_sandbox_file(path)


def test_plans_follow_the_seed_not_the_timing() -> None:
    config = FaultConfig(seed=7, error_rate=0.2, drop_rate=0.05, timeout_rate=0.05,
                         burst_every=20, burst_length=3, editor_rate=0.1,
                         latency_jitter_ms=5)

    def decisions(seed: int) -> list[tuple[str | None, int, bool, float]]:
        injector = FaultInjector(FaultConfig(**{**config.as_dict(), "seed": seed}), "hubspot")
        return [(p.action, p.error_status, p.editor, p.latency_seconds)
                for p in (injector.plan("GET", "x") for _ in range(300))]
    first, again, other = decisions(7), decisions(7), decisions(8)
    assert first == again and first != other
    actions = [a for a, _, _, _ in first]
    assert {"error", "drop", "timeout", "burst", None} <= set(actions)
    assert [n for n, a in enumerate(actions) if a == "burst"][:3] == [17, 18, 19]
    assert FaultInjector(None, "hubspot").plan("GET", "x").action is None


# -- HubSpot ----------------------------------------------------------------------------
@pytest.mark.parametrize("hubspot_box", [{"error_rate": 1.0}], indirect=True)
def test_hubspot_5xx_has_hubspots_error_body(hubspot_box: HubSpotSandbox) -> None:
    clients = Clients(hubspot_box)
    try:
        with pytest.raises(ApiException) as caught:
            clients.contacts.get_page(limit=5)
    finally:
        clients.close()
    assert caught.value.status in (500, 502, 503, 504)
    body = json.loads(caught.value.body)
    assert body["status"] == "error" and body["category"] == "INTERNAL_ERROR"
    assert body["correlationId"] and body["message"]
    assert [f.kind for f in hubspot_box.faults.injected()] == ["error_5xx"]
    assert hubspot_box.faults.injected()[0].detail == str(caught.value.status)


@pytest.mark.parametrize("hubspot_box", [{"burst_every": 4, "burst_length": 2}],
                         indirect=True)
def test_hubspot_429_burst_is_a_rate_limit_answer(hubspot_box: HubSpotSandbox) -> None:
    clients = Clients(hubspot_box)
    statuses = []
    try:
        for _ in range(8):
            try:
                clients.contacts.get_page_with_http_info(limit=1)
                statuses.append(200)
            except ApiException as error:
                statuses.append(error.status)
                body = json.loads(error.body)
                assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT",
                                                                   "TEN_SECONDLY_ROLLING")
                assert error.headers["X-HubSpot-RateLimit-Max"] == "190"
    finally:
        clients.close()
    assert statuses == [200, 200, 429, 429, 200, 200, 429, 429]
    assert hubspot_box.faults.counts()["burst_429"] == 4
    assert hubspot_box.calls(statuses={429}) == 4


@pytest.mark.parametrize("hubspot_box", [{"drop_rate": 1.0}], indirect=True)
def test_hubspot_dropped_connection_gets_no_answer(hubspot_box: HubSpotSandbox) -> None:
    clients = Clients(hubspot_box)
    try:
        with pytest.raises(urllib3.exceptions.ProtocolError):
            clients.owners.get_page()
    finally:
        clients.close()
    assert [f.kind for f in hubspot_box.faults.injected()] == ["drop"]
    assert hubspot_box.calls(statuses={NO_ANSWER}) == 1


# The request hangs until the sandbox stops (the fixture's teardown wakes it), so the client
# gives up first however slow the machine: no race between two durations.
@pytest.mark.parametrize("hubspot_box", [{"timeout_rate": 1.0, "timeout_seconds": 3600}],
                         indirect=True)
def test_hubspot_hung_request_outlasts_the_client(hubspot_box: HubSpotSandbox) -> None:
    clients = Clients(hubspot_box)
    try:
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            clients.contacts.get_page(limit=1, _request_timeout=0.3)
    finally:
        clients.close()
    assert [(f.kind, f.detail) for f in hubspot_box.faults.injected()] == [("timeout", "3600 s")]


@pytest.mark.parametrize("hubspot_box", [{"record_failure_rate": 0.5, "seed": 3}],
                         indirect=True)
def test_hubspot_record_failures_are_207_entries(hubspot_box: HubSpotSandbox) -> None:
    before = {r["id"]: r for r in hubspot_box.records()[:20]}
    clients = Clients(hubspot_box)
    try:
        data, status, _ = clients.batch.update_with_http_info(batch(
            *[(record_id, {"syncer_score": "42"}) for record_id in before]))
    finally:
        clients.close()
    injected = {f.record_id: f.kind for f in hubspot_box.faults.injected()}
    assert status == 207 and 0 < len(injected) < 20 and data.num_errors == len(injected)
    by_id = {i: e for e in data.errors for i in e.context["ids"]}
    assert set(by_id) == set(injected)
    for record_id, kind in injected.items():
        expected = "LOCKED" if kind == "record_lock" else "VALIDATION_ERROR"
        assert by_id[record_id].category == expected
        assert hubspot_box.record(record_id) == before[record_id]  # not written
    assert {r.id for r in data.results} == set(before) - set(injected)
    assert all(hubspot_box.record(i)["syncer_score"] == "42" for i in set(before) - set(injected))


@pytest.mark.parametrize("hubspot_box", [{"editor_rate": 1.0, "seed": 5}], indirect=True)
def test_hubspot_editor_changes_owner_or_stage_by_hand(hubspot_box: HubSpotSandbox) -> None:
    clients = Clients(hubspot_box)
    try:
        for _ in range(6):
            clients.owners.get_page()
    finally:
        clients.close()
    edits = hubspot_box.faults.injected("editor")
    assert len(edits) == 6
    changed = {r["id"]: r for r in hubspot_box.changed_records()}
    for edit in edits:
        assert edit.detail.split(": ")[0] in ("hubspot_owner_id", "lifecyclestage")
        assert edit.record_id in changed
    last = {e.record_id: e.detail.rsplit(" -> ", 1)[1] for e in edits}
    fields = {e.record_id: e.detail.split(":")[0] for e in edits}
    for record_id, value in last.items():
        assert changed[record_id][fields[record_id]] == value
        assert changed[record_id]["lastmodifieddate"] > changed[record_id]["createdate"]


def test_hubspot_connector_gets_through_retryable_faults(world: World) -> None:
    sandbox = hubspot(world, seed=11, error_rate=0.25, drop_rate=0.1, burst_every=5,
                      burst_length=1)
    made = HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), timeout_seconds=5,
        options={"retry_policy": NO_WAIT, "page_size": 5}))
    try:
        people = [p for page in made.people() for p in page]
        assert {p.email for p in people} == {p.email for p in world.people() if p.in_hubspot}
        counts = sandbox.faults.counts()
        assert counts["error_5xx"] and counts["drop"] and counts["burst_429"], counts
    finally:
        made.close()
        sandbox.stop()


# -- Salesforce -------------------------------------------------------------------------
@pytest.mark.parametrize("salesforce_box", [{"error_rate": 0.5, "seed": 8}], indirect=True)
def test_salesforce_5xx_is_a_salesforce_error_list(salesforce_box: SalesforceSandbox) -> None:
    sf = sf_client(salesforce_box)  # seed 8: the sign-in passes, the query fails
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM User")
    error = caught.value
    assert error.status in (500, 502, 503, 504)
    assert isinstance(error.content, list) and {"message", "errorCode"} <= error.content[0].keys()
    expected = "SERVER_UNAVAILABLE" if error.status == 503 else "UNKNOWN_EXCEPTION"
    assert error.content[0]["errorCode"] == expected
    assert salesforce_box.faults.counts()["error_5xx"] == 1
    assert salesforce_box.call_counts[("GET", "query", error.status)] == 1


@pytest.mark.parametrize("salesforce_box", [{"burst_every": 2, "burst_length": 1}],
                         indirect=True)
def test_salesforce_burst_is_the_concurrent_request_limit(
        salesforce_box: SalesforceSandbox) -> None:
    sf = sf_client(salesforce_box)  # request 0: the token
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM User")  # request 1: the last of the first two
    assert caught.value.status == 403
    assert caught.value.content == [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                                     "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 9
    assert salesforce_box.faults.counts() == {"burst_429": 1}


@pytest.mark.parametrize("salesforce_box", [{"drop_rate": 1.0}], indirect=True)
def test_salesforce_dropped_connection(salesforce_box: SalesforceSandbox) -> None:
    session = requests.Session()
    session.verify = salesforce_box.ca_file
    session.trust_env = False
    with pytest.raises(requests.ConnectionError):
        session.post(salesforce_box.base_url + "/services/oauth2/token",
                     data={"grant_type": "refresh_token", **salesforce_box.credentials})
    assert salesforce_box.call_counts[("POST", "oauth2/token", NO_ANSWER)] == 1
    assert [f.endpoint for f in salesforce_box.faults.injected("drop")] == ["oauth2/token"]


@pytest.mark.parametrize("salesforce_box",
                         [{"record_failure_rate": 0.5, "seed": 1}],
                         indirect=True)
def test_salesforce_record_failures_are_save_results(salesforce_box: SalesforceSandbox) -> None:
    sf = sf_client(salesforce_box)
    before = {r["Id"]: r for r in leads(salesforce_box, 20)}
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False, "records": [{"attributes": {"type": "Lead"}, "id": record_id,
                                         "Syncer_Stage__c": "MQL"} for record_id in before]})
    injected = {f.record_id: f.kind for f in salesforce_box.faults.injected()}
    assert 0 < len(injected) < 20 and {"record_lock", "record_validation"} == set(
        injected.values())
    for record_id, result in zip(before, results, strict=True):
        if record_id in injected:
            code = ("UNABLE_TO_LOCK_ROW" if injected[record_id] == "record_lock"
                    else "FIELD_CUSTOM_VALIDATION_EXCEPTION")
            assert result["success"] is False and result["errors"][0]["statusCode"] == code
            assert salesforce_box.record(record_id) == before[record_id]
        else:
            assert result == {"id": record_id, "success": True, "errors": []}
            assert salesforce_box.record(record_id)["Syncer_Stage__c"] == "MQL"


@pytest.mark.parametrize("salesforce_box", [{"record_failure_rate": 1.0}], indirect=True)
def test_salesforce_injected_failure_rolls_back_all_or_none(
        salesforce_box: SalesforceSandbox) -> None:
    sf = sf_client(salesforce_box)
    before = leads(salesforce_box, 3)
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": True, "records": [{"attributes": {"type": "Lead"}, "id": r["Id"],
                                        "Syncer_Score__c": 50} for r in before]})
    assert all(not r["success"] for r in results)
    assert all(salesforce_box.record(r["Id"]) == r for r in before)


@pytest.mark.parametrize("salesforce_box", [{"session_expiry_rate": 1.0}], indirect=True)
def test_salesforce_revoked_session_is_invalid_session_id(
        salesforce_box: SalesforceSandbox) -> None:
    sf = sf_client(salesforce_box)
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM User")
    assert caught.value.content == [{"message": "Session expired or invalid",
                                     "errorCode": "INVALID_SESSION_ID"}]
    assert salesforce_box.faults.counts() == {"session_expiry": 1}
    assert salesforce_box.call_counts[("POST", "oauth2/token", 200)] == 1


@pytest.mark.parametrize("salesforce_box", [{"editor_rate": 1.0, "seed": 2}], indirect=True)
def test_salesforce_editor_changes_owner_or_stage(salesforce_box: SalesforceSandbox) -> None:
    sf = sf_client(salesforce_box)
    for _ in range(6):
        sf.query("SELECT COUNT() FROM User")
    edits = salesforce_box.faults.injected("editor")
    assert edits
    changed = {r["Id"]: r for r in salesforce_box.changed_records()}
    for edit in edits:
        assert edit.detail.split(": ")[0] in ("OwnerId", "Syncer_Stage__c")
        assert changed[str(edit.record_id)]["SystemModstamp"] > \
            changed[str(edit.record_id)]["CreatedDate"]
    final = {e.record_id: (e.detail.split(":")[0], e.detail.rsplit(" -> ", 1)[1])
             for e in edits}
    for record_id, (field, value) in final.items():
        assert changed[str(record_id)][field] == value


def test_salesforce_connector_refreshes_and_retries(world: World) -> None:
    with SalesforceSandbox(world, faults=FaultConfig(seed=21, error_rate=0.2,
                                                     drop_rate=0.05)) as sandbox:
        settings = ConnectorSettings(
            name="salesforce", kind="salesforce", base_url=sandbox.base_url,
            credentials=dict(sandbox.credentials), ca_file=sandbox.ca_file,
            timeout_seconds=5)
        with SalesforceConnector(settings, retry=NO_WAIT) as made:
            people = [p for page in made.people() for p in page]
        counts = sandbox.faults.counts()
    assert {p.email for p in people} == {p.email for p in world.people() if p.in_salesforce}
    assert counts["error_5xx"] > 0


def test_same_seed_same_requests_same_faults(world: World) -> None:
    config = FaultConfig(seed=9, error_rate=0.3, burst_every=5, burst_length=1,
                         record_failure_rate=0.3, editor_rate=0.3)

    def run() -> list[tuple[int, str, str, str | None, str]]:
        sandbox = HubSpotSandbox(world, faults=config)
        sandbox.start()
        clients = Clients(sandbox)
        ids = [r["id"] for r in sandbox.records()[:30]]
        try:
            for start in range(0, 30, 10):
                with contextlib.suppress(ApiException):
                    clients.batch.update(batch(*[(i, {"syncer_fit_grade": "B"})
                                                 for i in ids[start:start + 10]]))
                with contextlib.suppress(ApiException):
                    clients.contacts.get_page(limit=3)
        finally:
            clients.close()
            sandbox.stop()
        return [(f.seq, f.kind, f.endpoint, f.record_id, f.detail)
                for f in sandbox.faults.injected()]
    first = run()
    assert first == run()
    assert {kind for _, kind, _, _, _ in first} >= {"error_5xx", "burst_429", "editor"}
