"""Recovery costs what is open, not what ever failed (issue 18, item 4): the open intents
of a run are read through the partial index of intent rows, and a run reconciled on a
connector is never read again. (bench/bench_recovery.py measures the speed.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from syncer.run.audit_trail import LOST, RECOVERED
from syncer.run.recovery import reconcile_interrupted_writes
from syncer.store import intents
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


def intent(run_id: str, connector: str, record_id: str, field: str, value: str,
           outcome: str = "intent") -> dict[str, Any]:
    return {"at": NOW - timedelta(hours=1), "run_id": run_id, "connector": connector,
            "record_id": record_id, "person_key": f"{record_id}@example.com", "field": field,
            "old_value": None, "new_value": value, "outcome": outcome, "error": None,
            "reasons": [], "model_version": "m@1"}


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
    audit(store, [intent("killed", "hubspot", "1", "lifecyclestage", "sql"),  # landed
                  intent("killed", "hubspot", "1", "hubspot_owner_id", "9"),  # lost
                  intent("failed", "hubspot", "1", "lifecyclestage", "mql"),
                  intent("failed", "hubspot", "1", "lifecyclestage", "mql", "written"),
                  intent("killed", "salesforce", "00Q1", "Status", "SQL"),
                  # closed before the kill: not open, and not closed twice
                  intent("killed", "hubspot", "2", "lifecyclestage", "mql"),
                  intent("killed", "hubspot", "2", "lifecyclestage", "mql", "written")])
    assert reconcile_interrupted_writes(store, ["hubspot"], OWNERS, NOW, "now1") == 2
    rows = {(r["run_id"], r["field"]): r for r in store.audit_rows(connector="hubspot")
            if r["outcome"] != "intent" and r["at"] == NOW}
    assert rows[("killed", "lifecyclestage")]["error"] == RECOVERED
    assert rows[("killed", "hubspot_owner_id")]["outcome"] == "not_written"
    assert rows[("killed", "hubspot_owner_id")]["error"] == LOST
    assert ("failed", "lifecyclestage") not in rows  # it had its outcome already
    assert not [r for r in rows.values() if r["record_id"] == "2"]
    with store.engine.connect() as connection:
        marked = dict(((r.run_id, r.connector), r.closed) for r in connection.execute(
            intents.reconciled_runs.select()))
        assert marked == {("killed", "hubspot"): 2, ("failed", "hubspot"): 0}
        # Salesforce was not pulled, so the killed run's intent there is still open ...
        assert intents.unreconciled(connection, ["hubspot", "salesforce"], "now2") == [
            ("killed", "salesforce"), ("failed", "salesforce")]
    run = store.run("killed")
    assert run is not None and run.status == "running"

    # ... and a second start on HubSpot reads no audit row at all.
    statements = statements_during(store, lambda: reconcile_interrupted_writes(
        store, ["hubspot"], OWNERS, NOW, "now2"))
    assert statements and not [s for s in statements if "audit" in s.lower()]

    # Once Salesforce is reconciled too, the killed run is over.
    assert reconcile_interrupted_writes(store, ["salesforce"], OWNERS, NOW, "now3") == 1
    run = store.run("killed")
    assert run is not None and run.status == "interrupted"
    with store.engine.connect() as connection:
        assert intents.unreconciled(connection, ["hubspot", "salesforce"], "now4") == []
    assert store.audit_log.verify().ok  # the outcome rows joined the hash chain


def test_a_run_with_nothing_open_is_marked_without_reading_its_closed_rows(
        store: Store) -> None:
    add_run(store, "failed", "failed", 50)
    audit(store, [intent("failed", "hubspot", str(i), "lifecyclestage", "mql", outcome)
                  for i in range(50) for outcome in ("intent", "written")])
    statements = statements_during(store, lambda: reconcile_interrupted_writes(
        store, ["hubspot"], OWNERS, NOW, "now1"))
    # its intents (through the index), its outcomes once, the connectors it announced
    assert len([s for s in statements if "FROM audit" in s]) == 3
    statements = statements_during(store, lambda: reconcile_interrupted_writes(
        store, ["hubspot"], OWNERS, NOW, "now2"))
    assert not [s for s in statements if "FROM audit" in s]


def literal_sql(store: Store) -> str:
    query = intents.open_intents_query("killed", "hubspot")
    return str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))


def test_the_recovery_query_uses_the_open_intents_index(store: Store) -> None:
    add_run(store, "killed", "running", 60)
    audit(store, [intent("killed", "hubspot", str(i), f, "x", outcome)
                  for i in range(200) for f in ("a", "b")
                  for outcome in ("intent", "written")])
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.execute(
                text("EXPLAIN QUERY PLAN " + literal_sql(store))))
        else:
            connection.execute(text("ANALYZE audit"))
            # A tiny table is cheaper to scan; forbid that, to see the index is usable.
            connection.execute(text("SET enable_seqscan = off"))
            plan = " ".join(str(row[0]) for row in connection.execute(
                text("EXPLAIN " + literal_sql(store))))
    assert "ix_audit_open_intents" in plan, plan


def test_schema_6_adds_the_index_to_an_older_state(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_audit_open_intents"))
            connection.execute(text("DROP TABLE reconciled_runs"))
            intents.create_schema(connection)
            intents.create_schema(connection)  # idempotent
        assert reconcile_interrupted_writes(store, ["hubspot"], OWNERS, NOW, "now") == 0
    finally:
        store.close()
