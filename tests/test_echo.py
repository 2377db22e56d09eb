"""The echo of syncer's own writes costs nothing (issue 18, item 3): an unchanged re-run
reads none of it back and spends one request per stream, while others' changes inside the
cursor's overlap are still read. Counted on the sandboxes' own request logs."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from structlog.testing import capture_logs

from connectors.hubspot.search import time_ranges
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.run.pipeline import run_sync
from syncer.store import echo as echo_store
from tests.conftest import NOW, Sandboxes, sync_once
from tests.sandbox_control import control


def calls(sandboxes: Sandboxes) -> Counter[str]:
    """Requests each sandbox answered, by CRM, method and route; not its 429s: each run
    here has a fresh connector, whose first search may come within HubSpot's per-second
    search limit of the last run's, and is then retried (a rate-limit answer)."""
    seen: Counter[str] = Counter()
    for crm, sandbox in (("hubspot", sandboxes.hubspot), ("salesforce", sandboxes.salesforce)):
        for (method, rule, status), n in sandbox.call_counts.items():  # type: ignore[attr-defined]
            if status != 429:
                seen[f"{crm} {method} {rule}"] += n
    return seen


def of(spent: Counter[str], crm: str) -> Counter[str]:
    return Counter({k.removeprefix(f"{crm} "): v for k, v in spent.items()
                    if k.startswith(f"{crm} ")})


def people_cursor(loaded: LoadedConfig, connector: str) -> datetime:
    with Runtime(loaded) as runtime:
        cursor = runtime.require_store().cursor(connector, "people")
    assert cursor is not None
    return cursor


def vp_candidates(sandboxes: Sandboxes) -> tuple[str, str]:
    """A HubSpot lead and a Salesforce Lead whose title is not VP yet."""
    contact = next(r for r in sandboxes.hubspot.records()
                   if r.get("lifecyclestage") == "lead" and r.get("jobtitle") != "VP Sales")
    lead = next(r for r in sandboxes.salesforce.records()
                if str(r["Id"]).startswith("00Q") and r.get("Title") != "VP Sales")
    return str(contact["id"]), str(lead["Id"])


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_an_unchanged_rerun_reads_no_echo_and_spends_one_request_per_stream(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    first = sync_once(sandbox_config)
    assert sum(first.fields_written.values()) > 0  # the full sync wrote nearly everyone
    for run in range(3):  # quiet runs cost the same, run after run: nothing builds up
        before = calls(sandboxes)
        with capture_logs() as logs:
            quiet = sync_once(sandbox_config)
        spent = calls(sandboxes) - before
        assert quiet.people == 0 and quiet.fields_written == Counter()
        assert sum(quiet.records_pulled.values()) == 0
        read = {e["connector"]: e["read"] for e in logs if e["event"] == "pull.done"}
        assert read["hubspot"] == 0  # HubSpot's answers told the exact stamps of our writes
        # Salesforce stamps whole seconds: the last second of our writes is read back once
        # (someone may have edited in that second too), never again.
        assert read["salesforce"] == 0 or run == 0
        hubspot = of(spent, "hubspot")
        assert hubspot == Counter({"POST /crm/v3/objects/<object_type>/search": 2,
                                   "GET /events/v3/events/": 1})  # people, merges, events
        salesforce = of(spent, "salesforce")
        # the sign-in, then one Composite call for people (a queryAll per object, with
        # its successions) and one for the four activity streams (campaign members,
        # Tasks, Events, Opportunities): no plain query, no describe, no owners
        assert salesforce == Counter({"POST composite": 2, "POST oauth2/token": 1})
        assert sum(salesforce.values()) - salesforce["POST oauth2/token"] <= 4


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_others_changes_in_the_overlap_are_read_and_our_writes_are_decided_once(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    sync_once(sandbox_config)
    contact_id, lead_id = vp_candidates(sandboxes)
    # Stamped inside the cursor's overlap (a change the search index showed late), and
    # before syncer's own writes: the overlap is spent on it.
    late = people_cursor(sandbox_config, "hubspot") - timedelta(minutes=2)
    control(sandboxes.hubspot, "edit", id=contact_id, field="jobtitle", value="VP Sales",
            stamp=late.isoformat())
    control(sandboxes.salesforce, "edit", id=lead_id, field="Title", value="VP Sales",
            stamp=(people_cursor(sandbox_config, "salesforce")
                   - timedelta(minutes=2)).isoformat())
    second = sync_once(sandbox_config)
    assert second.records_pulled == Counter({"hubspot": 1, "salesforce": 1})
    assert second.people == 2 and second.records_written["hubspot"] == 1
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        with store.engine.connect() as connection:
            assert len(echo_store.windows(connection, "hubspot")) == 2  # one per writing run
        (key,) = store.person_keys_of("hubspot", [contact_id])
        (lead_key,) = store.person_keys_of("salesforce", [lead_id])
        decision = store.decisions([key])[key]
        records = store.load_people([key, lead_key])
    assert any("vp" in r.rule_id for r in decision.reasons)
    titles = {(p.source, p.record_id): p.title for k in (key, lead_key) for p in records[k][0]}
    assert titles[("hubspot", contact_id)] == titles[("salesforce", lead_id)] == "VP Sales"
    third = sync_once(sandbox_config)  # what the second run wrote is its own echo
    assert third.people == 0 and sum(third.records_pulled.values()) == 0
    assert third.fields_written == Counter()


def test_a_search_leaves_out_each_window_with_one_filter_group_per_range_around_it() -> None:
    def at(minute: int) -> datetime:
        return NOW + timedelta(minutes=minute)

    def ms(minute: int) -> str:
        return str(int(at(minute).timestamp() * 1000))

    assert time_ranges(at(0)) == [[{"propertyName": "lastmodifieddate", "operator": "GTE",
                                    "value": ms(0)}]]
    groups = time_ranges(at(0), [(at(-10), at(-5)), (at(-3), at(2)), (at(4), at(6))])
    assert [[(f["operator"], f["value"]) for f in group] for group in groups] == [
        [("GT", ms(2)), ("LTE", ms(4))],  # the first window began before `since`
        [("GT", ms(6))]]


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_connectors_kept_across_runs_tell_each_run_its_own_window(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    with Runtime(sandbox_config) as runtime:  # as the daemon keeps them
        store = runtime.require_store()

        def run() -> None:
            run_sync(sandbox_config, store, runtime.connectors, runtime.model, NOW)
        run()
        contact_id, _ = vp_candidates(sandboxes)
        control(sandboxes.hubspot, "edit", id=contact_id, field="jobtitle", value="VP Sales")
        run()
        with store.engine.connect() as connection:
            first, second = echo_store.windows(connection, "hubspot")
    assert second.start >= first.end  # not stretched back over the time between the runs
    assert second.end > second.start
