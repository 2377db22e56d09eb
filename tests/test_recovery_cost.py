"""Recovery costs what is open, not what ever failed (issue 18, item 4): the open intents
of a run are read through the index of write intents by run, and a run reconciled on a
connector is never read again. (bench/bench_recovery.py measures the speed.) And the
schema 24 step that moved the intents out of the audit log carries the open ones over."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, inspect, text

from syncer.run.audit_trail import LOST, RECOVERED
from syncer.run.recovery import reconcile_interrupted_writes
from syncer.store import intents, undecided
from syncer.store import tables as t
from syncer.store.repository import Store

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
OWNERS: dict[str, str | None] = {"hubspot": "hubspot_owner_id", "salesforce": "OwnerId"}


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    opened = Store.open(state_url)
    try:
        yield opened
    finally:
        opened.close()


REASONS = [{"rule_id": "fit.title", "points": 15.0, "detail": "VP title", "evidence_at": None}]


def intent(run_id: str, connector: str, record_id: str, field: str, value: str,
           outcome: str = "intent") -> dict[str, Any]:
    return {"at": NOW - timedelta(hours=1), "run_id": run_id, "connector": connector,
            "record_id": record_id, "person_key": f"{record_id}@example.com", "field": field,
            "old_value": None, "new_value": value, "outcome": outcome, "error": None,
            "reasons": REASONS, "model_version": "m@1"}


def announce(store: Store, rows: list[dict[str, Any]], *, closed: bool = False) -> None:
    """One batch of one run on one connector, as Writer.send commits it; `closed`: its
    outcomes were stored too (Writer._record: written rows, the batch closed)."""
    with store.transaction() as tx:
        batch = intents.announce(tx, rows[0]["run_id"], rows[0]["connector"], NOW,
                                 rows)  # type: ignore[arg-type]
        if closed:
            store.append_audit(tx, [{**row, "outcome": "written"} for row in rows])
            intents.close(tx, batch)


def add_run(store: Store, run_id: str, status: str, minutes_ago: int) -> None:
    started = NOW - timedelta(minutes=minutes_ago)
    store.start_run(run_id, ["hubspot", "salesforce"], started, False)
    if status != "running":
        store.finish_run(run_id, started + timedelta(minutes=1), status, {})


def add_record(store: Store, connector: str, record_id: str, values: dict[str, str]) -> None:
    with store.transaction() as tx:
        tx.execute(t.records.insert(), [{
            "connector": connector, "record_id": record_id, "object_type": "contact",
            "person_key": f"{record_id}@example.com", "fields": {}, "crm_values": values,
            "pulled_at": NOW}])


def audit(store: Store, rows: list[dict[str, Any]]) -> None:
    with store.transaction() as tx:
        store.append_audit(tx, rows)


def statements_during(store: Store, action: Any) -> list[str]:
    """The SQL the store's engine ran while `action()` ran."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)
    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        action()
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    return seen


def test_a_reconciled_run_is_never_scanned_again(store: Store) -> None:
    add_run(store, "killed", "running", 60)
    add_run(store, "failed", "failed", 50)
    add_run(store, "fine", "succeeded", 40)
    add_record(store, "hubspot", "1", {"lifecyclestage": "sql", "hubspot_owner_id": "7"})
    announce(store, [intent("killed", "hubspot", "1", "lifecyclestage", "sql"),  # landed
                     intent("killed", "hubspot", "1", "hubspot_owner_id", "9")])  # lost
    announce(store, [intent("failed", "hubspot", "1", "lifecyclestage", "mql")], closed=True)
    announce(store, [intent("killed", "salesforce", "00Q1", "Status", "SQL")])
    # closed before the kill: not open, and not closed twice
    announce(store, [intent("killed", "hubspot", "2", "lifecyclestage", "mql")], closed=True)
    assert reconcile_interrupted_writes(store, ["hubspot"], OWNERS, NOW, "now1") == 2
    rows = {(r["run_id"], r["field"]): r for r in store.audit_rows(connector="hubspot")
            if r["at"] == NOW and r["error"] is not None}
    assert rows[("killed", "lifecyclestage")]["error"] == RECOVERED
    assert rows[("killed", "lifecyclestage")]["outcome"] == "written"
    assert rows[("killed", "lifecyclestage")]["reasons"] == REASONS  # the intent's own
    assert rows[("killed", "hubspot_owner_id")]["outcome"] == "not_written"
    assert rows[("killed", "hubspot_owner_id")]["error"] == LOST
    assert ("failed", "lifecyclestage") not in rows  # it had its outcome already
    assert not [r for r in rows.values() if r["record_id"] == "2"]
    assert len(store.audit_rows(record_id="2")) == 1  # its outcome, once
    with store.engine.connect() as connection:
        marked = dict(((r.run_id, r.connector), r.closed) for r in connection.execute(
            intents.reconciled_runs.select()))
        assert marked == {("killed", "hubspot"): 2, ("failed", "hubspot"): 0}
        # Salesforce was not pulled, so the killed run's intent there is still open ...
        assert intents.unreconciled(connection, ["hubspot", "salesforce"], "now2") == [
            ("killed", "salesforce"), ("failed", "salesforce")]
        assert [r["record_id"] for r in intents.open_intents(
            connection, "killed", "salesforce")] == ["00Q1"]
        # the person of the write that did not land is decided again by this run
        assert undecided.keys(connection) == ["1@example.com"]
        assert intents.open_intents(connection, "killed", "hubspot") == []
    run = store.run("killed")
    assert run is not None and run.status == "running"

    # ... and a second start on HubSpot reads neither the intents nor the audit.
    statements = statements_during(store, lambda: reconcile_interrupted_writes(
        store, ["hubspot"], OWNERS, NOW, "now2"))
    assert statements and not [s for s in statements
                               if "audit" in s.lower() or "write_intents" in s.lower()]

    # Once Salesforce is reconciled too, the killed run is over.
    assert reconcile_interrupted_writes(store, ["salesforce"], OWNERS, NOW, "now3") == 1
    run = store.run("killed")
    assert run is not None and run.status == "interrupted"
    with store.engine.connect() as connection:
        assert intents.unreconciled(connection, ["hubspot", "salesforce"], "now4") == []
        assert not list(connection.execute(intents.write_intents.select()))
    assert store.audit_log.verify().ok  # the outcome rows joined the hash chain


def test_a_run_with_nothing_open_is_marked_without_reading_its_closed_rows(
        store: Store) -> None:
    add_run(store, "failed", "failed", 50)
    for i in range(50):
        announce(store, [intent("failed", "hubspot", str(i), "lifecyclestage", "mql")],
                 closed=True)
    statements = statements_during(store, lambda: reconcile_interrupted_writes(
        store, ["hubspot"], OWNERS, NOW, "now1"))
    # its open intents, once; none of its audit rows
    assert len([s for s in statements if "write_intents.fields" in s]) == 1
    assert not [s for s in statements if "FROM audit" in s]
    statements = statements_during(store, lambda: reconcile_interrupted_writes(
        store, ["hubspot"], OWNERS, NOW, "now2"))
    assert not [s for s in statements if "write_intents" in s]


def literal_sql(store: Store) -> str:
    query = intents.open_intents_query("killed", "hubspot")
    return str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))


def test_the_recovery_query_uses_the_open_intents_index(store: Store) -> None:
    add_run(store, "killed", "running", 60)
    add_run(store, "failed", "failed", 70)
    for i in range(200):
        announce(store, [intent("killed", "hubspot", str(i), f, "x") for f in ("a", "b")],
                 closed=i % 2 == 0)
        for run_id, name in (("failed", "hubspot"), ("killed", "salesforce")):
            for _ in range(4):  # other runs' and connectors' open batches, many more
                announce(store, [intent(run_id, name, str(i), "a", "x")])
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.execute(
                text("EXPLAIN QUERY PLAN " + literal_sql(store))))
        else:
            connection.execute(text("ANALYZE write_intents"))
            # A tiny table is cheaper to scan; forbid that, to see the index is usable.
            connection.execute(text("SET enable_seqscan = off"))
            plan = " ".join(str(row[0]) for row in connection.execute(
                text("EXPLAIN " + literal_sql(store))))
        assert len(intents.open_intents(connection, "killed", "hubspot")) == 200
    assert "ix_write_intents_run" in plan, plan


def test_schema_6_adds_its_table_and_index_to_an_older_state(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_runs_status"))
            connection.execute(text("DROP TABLE reconciled_runs"))
            intents.create_schema(connection)
            intents.create_schema(connection)  # idempotent
            assert "ix_runs_status" in {ix["name"] for ix in inspect(connection)
                                        .get_indexes("runs")}
        add_run(store, "failed", "failed", 50)
        assert reconcile_interrupted_writes(store, ["hubspot"], OWNERS, NOW, "now") == 0
        with store.engine.connect() as connection:
            assert list(connection.execute(intents.reconciled_runs.select()))
    finally:
        store.close()


def test_schema_24_carries_the_audits_open_intents_over(state_url: str) -> None:
    """A state from before schema 24 kept its intents as audit rows: the migration moves
    the open ones (no outcome row, run not reconciled there) to write_intents, drops the
    index of intent rows, and the next start closes them from the CRM."""
    store = Store.open(state_url)
    try:
        add_run(store, "killed", "running", 60)
        add_run(store, "old", "failed", 90)
        add_run(store, "fine", "succeeded", 40)
        add_record(store, "hubspot", "1", {"lifecyclestage": "sql"})
        audit(store, [intent("killed", "hubspot", "1", "lifecyclestage", "sql"),  # open
                      intent("killed", "hubspot", "1", "hubspot_owner_id", "9"),  # open
                      intent("killed", "hubspot", "2", "lifecyclestage", "mql"),
                      intent("killed", "hubspot", "2", "lifecyclestage", "mql", "failed"),
                      intent("old", "hubspot", "3", "lifecyclestage", "mql"),  # reconciled
                      intent("fine", "hubspot", "4", "lifecyclestage", "mql")])  # finished
        with store.transaction() as tx:  # as a schema-23 state was
            intents.mark_reconciled(tx, {("old", "hubspot"): 0}, NOW)
            tx.execute(text("DROP TABLE write_intents"))
            tx.execute(text("CREATE INDEX ix_audit_open_intents ON audit "
                            "(stamp_id, connector_id) WHERE outcome_id = 1"))
            tx.execute(delete(t.schema_version))
            tx.execute(t.schema_version.insert(), [{"version": 23, "applied_at": NOW}])
        head = store.audit_log.verify()
    finally:
        store.close()
    store = Store.open(state_url)
    try:
        with store.engine.connect() as connection:
            assert "ix_audit_open_intents" not in {
                ix["name"] for ix in inspect(connection).get_indexes("audit")}
            carried = intents.open_intents(connection, "killed", "hubspot")
            assert [(r["record_id"], r["field"], r["new_value"], r["reasons"])
                    for r in carried] == [("1", "lifecyclestage", "sql", REASONS),
                                          ("1", "hubspot_owner_id", "9", REASONS)]
            assert not intents.open_intents(connection, "old", "hubspot")
            assert not intents.open_intents(connection, "fine", "hubspot")
        assert reconcile_interrupted_writes(store, ["hubspot"], OWNERS, NOW, "now") == 2
        outcomes = {(r["field"], r["outcome"]) for r in store.audit_rows(record_id="1")
                    if r["at"] == NOW}
        assert outcomes == {("lifecyclestage", "written"), ("hubspot_owner_id", "not_written")}
        assert store.audit_log.verify().ok and head.ok  # the old intent rows stay chained
    finally:
        store.close()
