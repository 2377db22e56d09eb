"""Reconciling writes a crash interrupted.

Writer.push commits an `intent` audit row per field before calling the CRM and the
outcome (`written` / `failed`) after. A run killed in between leaves intents without an
outcome. The next run, once it has pulled the records again, looks at what the CRM holds:
the intended value there means the write landed (`written`, recovered); anything else
means it did not (`not_written`). Either way the trail is complete, and the normal diff of
that run writes whatever is still missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased

from syncer.store import routing as routing_store
from syncer.store import tables as t
from syncer.store.repository import Store
from syncer.writeback import canonical

log = structlog.get_logger(__name__)

RECOVERED = "recovered: the write reached the CRM before its run was interrupted"
LOST = "interrupted before the write reached the CRM; the next diff writes it again"


def unfinished_runs(store: Store, current_run: str) -> list[str]:
    """Runs that may have left intents open: killed ones still say `running`, and a run
    that failed may have died inside a CRM call. (Runs end their writes with outcomes.)"""
    with store.engine.connect() as connection:
        return list(connection.execute(select(t.runs.c.run_id).where(
            t.runs.c.status.in_(("running", "failed")),
            t.runs.c.run_id != current_run)).scalars())


def orphan_intents(store: Store, connectors: Sequence[str],
                   runs: Sequence[str]) -> list[dict[str, Any]]:
    """Intent rows of these connectors and runs that have no outcome row."""
    if not runs:
        return []
    outcome = aliased(t.audit)
    query = select(t.audit).where(
        t.audit.c.run_id.in_(list(runs)),
        t.audit.c.outcome == "intent", t.audit.c.connector.in_(list(connectors)),
        ~exists().where(and_(outcome.c.run_id == t.audit.c.run_id,
                             outcome.c.connector == t.audit.c.connector,
                             outcome.c.record_id == t.audit.c.record_id,
                             outcome.c.field == t.audit.c.field,
                             outcome.c.outcome != "intent"))).order_by(t.audit.c.id)
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def reconcile_interrupted_writes(store: Store, connectors: Sequence[str], owner_fields:
                                 dict[str, str | None], now: datetime,
                                 current_run: str) -> int:
    """Close every orphan intent with its real outcome; returns how many were closed.
    Killed runs (`running`) are marked `interrupted` once nothing of theirs is open."""
    runs = unfinished_runs(store, current_run)
    orphans = orphan_intents(store, connectors, runs)
    if not orphans:
        _mark_interrupted(store, runs, connectors)
        return 0
    current: dict[tuple[str, str], dict[str, Any]] = {}
    with store.engine.connect() as connection:
        for row in connection.execute(select(
                t.records.c.connector, t.records.c.record_id, t.records.c.crm_values).where(
                t.records.c.record_id.in_(sorted({o["record_id"] for o in orphans})))):
            current[(row.connector, row.record_id)] = dict(row.crm_values)
    audit_rows, written_rows, owners = [], [], []
    for intent in orphans:
        held = current.get((intent["connector"], intent["record_id"]), {}).get(intent["field"])
        landed = canonical(held) == canonical(intent["new_value"])
        audit_rows.append({key: intent[key] for key in (
            "run_id", "connector", "record_id", "person_key", "field", "old_value",
            "new_value", "reasons", "model_version")} | {
            "at": now, "outcome": "written" if landed else "not_written",
            "error": RECOVERED if landed else LOST})
        if landed:
            written_rows.append({"connector": intent["connector"],
                                 "record_id": intent["record_id"], "field": intent["field"],
                                 "value": intent["new_value"], "written_at": now,
                                 "run_id": intent["run_id"]})
            if intent["field"] == owner_fields.get(intent["connector"]):
                owners.append(intent["person_key"])
    with store.transaction() as tx:
        store.append_audit(tx, audit_rows)
        store.record_write(tx, written_rows)
        routing_store.mark_owner_written(tx, owners, now)
    log.warning("recovery.reconciled", intents=len(orphans), landed=len(written_rows))
    _mark_interrupted(store, runs, connectors)
    return len(orphans)


def _mark_interrupted(store: Store, runs: Sequence[str], connectors: Sequence[str]) -> None:
    """A killed run's intents on these connectors are all closed now; once none of its
    intents anywhere is open, it stops being a candidate."""
    if not runs:
        return
    every = [name for (name,) in _connector_names(store)]
    done = [run for run in runs if not orphan_intents(store, every, [run])]
    if done:
        with store.transaction() as tx:
            tx.execute(update(t.runs).where(t.runs.c.run_id.in_(done),
                                            t.runs.c.status == "running")
                       .values(status="interrupted"))


def _connector_names(store: Store) -> list[tuple[str]]:
    with store.engine.connect() as connection:
        return [(name,) for name in connection.execute(
            select(t.audit.c.connector).distinct()).scalars()]
