"""Incremental pulls: after the first run only what changed is read and re-qualified."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from hubspot import HubSpot

from connectors.hubspot.answers import contact_page
from connectors.hubspot.raw import answer
from connectors.hubspot.search import modified_since
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.run import pull
from tests.conftest import NOW, Sandboxes, sync_once
from tests.sandbox_control import control


def calls(sandboxes: Sandboxes) -> Counter[str]:
    """HubSpot requests by route, and Salesforce requests in total."""
    seen: Counter[str] = Counter()
    for (method, rule, _status), n in sandboxes.hubspot.call_counts.items():  # type: ignore[attr-defined]
        seen[f"{method} {rule}"] += n
    seen["salesforce"] = sum(sandboxes.salesforce.call_counts.values())  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_only_changed_records_are_pulled_and_requalified(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pull, "CURSOR_OVERLAP", timedelta(0))
    first = sync_once(sandbox_config)
    everyone = first.people
    time.sleep(1.1)  # SOQL datetimes have whole seconds: leave the first run's second
    second = sync_once(sandbox_config)  # re-reads what the first run wrote: the echo is no change
    assert second.fields_written == Counter()
    assert sum(second.records_pulled.values()) == 0 and second.people == 0
    time.sleep(1.1)
    third = sync_once(sandbox_config)
    assert sum(third.records_pulled.values()) == 0  # nothing changed since
    assert third.people == 0

    target = next(r for r in sandboxes.hubspot.records()
                  if r.get("lifecyclestage") == "lead" and r.get("jobtitle") != "VP Sales")
    control(sandboxes.hubspot, "edit", id=target["id"], field="jobtitle", value="VP Sales")  # type: ignore[arg-type]
    before = calls(sandboxes)
    fourth = sync_once(sandbox_config)
    spent = calls(sandboxes) - before
    assert fourth.records_pulled["hubspot"] == 1
    assert fourth.people == 1 < everyone
    assert spent["GET /crm/v3/objects/<object_type>"] == 0  # no full list walk
    # one search for changed contacts, one for merges (none here)
    assert spent["POST /crm/v3/objects/<object_type>/search"] == 2
    assert spent["POST /crm/v3/objects/<object_type>/batch/update"] == 1
    with Runtime(sandbox_config) as runtime:
        decision = runtime.require_store().decisions([target["email"].lower()])
    assert any("vp" in r.rule_id for r in decision[target["email"].lower()].reasons)

    full = sync_once(sandbox_config, full=True)
    assert full.people == everyone
    assert sum(full.records_pulled.values()) == sum(first.records_pulled.values())


def test_search_walks_past_the_result_cap_each_contact_once() -> None:
    world = World(seed=4, size=300, now=NOW)
    with HubSpotSandbox(world, search_cap=50, search_requests_per_second=None) as sandbox:
        client = HubSpot(access_token=sandbox.credentials["access_token"])
        api = client.crm.contacts.search_api
        api.api_client.configuration.host = sandbox.base_url
        since = datetime(2000, 1, 1, tzinfo=timezone.utc)
        pages = list(modified_since(since, ["email"], lambda r: contact_page(answer(
            api.do_search_with_http_info(public_object_search_request=r,
                                         _preload_content=False))[0], "search"),
            limit=20, cap=50))
        ids = [c["id"] for page in pages for c in page]
        expected = {str(r["id"]) for r in sandbox.records()}
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
