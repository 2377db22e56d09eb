"""A run that dies after its pull committed, before deciding the people it pulled, leaves
them noted (syncer/store/undecided.py): the next run decides and writes them, although its
own pull finds nothing new (the cursor is past them, and the re-read of the overlap is no
change). So does one whose write never reached the CRM: recovery notes its person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.values import canonical
from syncer.run import push
from syncer.run.audit_trail import LOST
from syncer.run.chunk import Sync
from syncer.store import tables, undecided
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from tests.conftest import (
    NOW,
    Killed,
    Sandboxes,
    as_left_at_schema,
    schema_of,
    sync_once,
)
from tests.sandbox_control import control


def noted(loaded: LoadedConfig) -> list[str]:
    with Runtime(loaded) as runtime, runtime.require_store().engine.connect() as connection:
        return list(connection.execute(select(undecided.undecided.c.person_key)).scalars())


def promote_a_lead(sandboxes: Sandboxes) -> tuple[dict[str, Any], str]:
    """A rep gives a HubSpot lead a VP title (a change of score): the contact as it was
    before, and its person key."""
    target = next(r for r in sandboxes.hubspot.records()
                  if r.get("lifecyclestage") == "lead" and r.get("jobtitle") != "VP Sales")
    control(sandboxes.hubspot, "edit", id=target["id"], field="jobtitle",  # type: ignore[arg-type]
            value="VP Sales")
    return target, target["email"].lower()


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_people_a_dead_run_pulled_are_decided_by_the_next(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = sync_once(sandbox_config)  # the day's first run: everyone decided
    assert first.status == "succeeded" and noted(sandbox_config) == []
    target, key = promote_a_lead(sandboxes)
    score_before = target["syncer_score"]

    def die(self: Sync, keys: Any) -> None:
        raise Killed
    with monkeypatch.context() as patched:
        patched.setattr(Sync, "process_chunk", die)
        with pytest.raises(Killed):
            sync_once(sandbox_config)  # pulled the edit, moved its cursor, then died
    assert noted(sandbox_config) == [key]

    third = sync_once(sandbox_config)
    assert sum(third.records_pulled.values()) == 0  # its own pull brought nothing new
    assert third.people == 1 and third.fields_written["hubspot"] > 0
    with Runtime(sandbox_config) as runtime:
        decision = runtime.require_store().decisions([key])[key]
    assert any("vp" in r.rule_id for r in decision.reasons)
    crm = next(r for r in sandboxes.hubspot.records() if r["id"] == target["id"])
    assert canonical(crm["syncer_score"]) == str(decision.score) != canonical(score_before)
    assert noted(sandbox_config) == []  # decided and written: forgotten

    quiet = sync_once(sandbox_config)
    assert quiet.people == 0 and not quiet.fields_written


def test_a_state_from_before_schema_25_gets_the_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    as_left_at_schema(url, 24, "DROP TABLE undecided", "DROP TABLE undecided_accounts")
    store = Store.open(url)
    try:
        with store.transaction() as tx:
            undecided.note(tx, ["b@x.com", "a@x.com"], NOW)
            undecided.note(tx, ["a@x.com"], NOW)  # noted once
            undecided.note_accounts(tx, {("hubspot", "7"): None,
                                         ("salesforce", "001A"): "acme.com"}, NOW)
            # noted again: a moved domain is kept, and gained where it was missing
            undecided.note_accounts(tx, {("hubspot", "7"): "acme.com",
                                         ("salesforce", "001A"): None}, NOW)
        with store.engine.connect() as connection:
            assert undecided.keys(connection) == ["a@x.com", "b@x.com"]
            assert undecided.accounts(connection) == {("hubspot", "7"): "acme.com",
                                                      ("salesforce", "001A"): "acme.com"}
        with store.transaction() as tx:
            undecided.forget_accounts(tx, [("hubspot", "7")])
        with store.engine.connect() as connection:
            assert undecided.accounts(connection) == {("salesforce", "001A"): "acme.com"}
    finally:
        store.close()
    assert schema_of(url) == LATEST


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_write_that_never_reached_the_crm_is_made_by_the_next_run(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run dies with its intent committed and the batch never sent: the next run's
    recovery closes it as not written and notes the person, so that run (an incremental
    one, whose pull finds nothing new) decides and writes them again."""
    sync_once(sandbox_config)  # the day's first run: everyone decided
    target, key = promote_a_lead(sandboxes)

    def die(*_: Any) -> None:
        raise Killed
    with monkeypatch.context() as patched:
        patched.setattr(push, "_write", die)
        with pytest.raises(Killed):
            sync_once(sandbox_config)  # decided, intent committed, killed before the call
    unchanged = next(r for r in sandboxes.hubspot.records() if r["id"] == target["id"])
    assert unchanged["syncer_score"] == target["syncer_score"]

    third = sync_once(sandbox_config)
    assert sum(third.records_pulled.values()) == 0 and third.people == 1
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        decision = store.decisions([key])[key]
        lost = [r for r in store.audit_rows(outcome="not_written")
                if r["record_id"] == target["id"]]
    assert lost and {r["error"] for r in lost} == {LOST}
    crm = next(r for r in sandboxes.hubspot.records() if r["id"] == target["id"])
    assert canonical(crm["syncer_score"]) == str(decision.score) \
        != canonical(target["syncer_score"])
    assert noted(sandbox_config) == []


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_people_a_dry_run_pulled_are_decided_by_the_next_real_run(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    """A dry run pulls (and moves the cursors) like any run but writes nothing: the people
    it pulled stay noted, and the next real run writes them."""
    sync_once(sandbox_config)  # the day's first run: everyone decided
    target, key = promote_a_lead(sandboxes)
    dry = sync_once(sandbox_config, dry_run=True)
    assert dry.records_pulled["hubspot"] == 1 and [w.record_id for w in dry.planned
                                                   if w.field == "syncer_score"] == [target["id"]]
    assert noted(sandbox_config) == [key]
    real = sync_once(sandbox_config)
    assert sum(real.records_pulled.values()) == 0 and real.people == 1
    crm = next(r for r in sandboxes.hubspot.records() if r["id"] == target["id"])
    assert canonical(crm["syncer_score"]) != canonical(target["syncer_score"])
    assert noted(sandbox_config) == []


def test_a_run_of_one_connector_forgets_only_the_people_it_decided(state_url: str) -> None:
    """A run that decided everyone of its connectors forgets them and the people with no
    record left; a person only in another connector waits for a run of that one (the
    daemon runs each connector on its own)."""
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            tx.execute(tables.records.insert(), [
                {"connector": connector, "record_id": record_id, "object_type": "contact",
                 "person_key": key, "fields": {}, "crm_values": {}, "pulled_at": NOW}
                for connector, record_id, key in (("hubspot", "1", "both@x.com"),
                                                  ("salesforce", "00Q1", "both@x.com"),
                                                  ("hubspot", "2", "hubspot@x.com"),
                                                  ("salesforce", "00Q2", "salesforce@x.com"))])
            undecided.note(tx, ["both@x.com", "hubspot@x.com", "salesforce@x.com",
                                "gone@x.com"], NOW)
        with store.transaction() as tx:
            undecided.forget_people_of(tx, ["hubspot"])
        with store.engine.connect() as connection:
            assert undecided.keys(connection) == ["salesforce@x.com"]
    finally:
        store.close()
