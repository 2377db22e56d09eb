"""Reconciling writes a crash interrupted.

Writer.send commits the intent to write a batch before calling the CRM, and the
transaction that stores the outcomes (`written` / `failed` audit rows) deletes it. A run
killed in between leaves the intent open (syncer/store/intents.py). The next run, once it
has pulled the records again, looks at what the CRM holds: the intended value there means
the write landed (`written`, recovered); anything else means it did not (`not_written`),
and its person is noted as undecided (syncer/store/undecided.py), so this run decides them
again and its diff writes what is still missing, even when nothing else brings them up
(an incremental run, or a full sync's deciding resumed past them).

Recovery costs what is open, not what ever failed: each (run, connector) is reconciled
once, through an index of open intents by run, and then marked so no later start reads it
again (syncer/store/intents.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog

from syncer.domain.json_values import JSONObject
from syncer.domain.values import canonical
from syncer.run.audit_trail import AuditRow, recovered_row
from syncer.store import intents as intent_store
from syncer.store import routing as routing_store
from syncer.store import undecided
from syncer.store.intents import IntentRow
from syncer.store.repository import Store, WrittenRow

log = structlog.get_logger(__name__)



def reconcile_interrupted_writes(store: Store, connectors: Sequence[str], owner_fields:
                                 Mapping[str, str | None], now: datetime,
                                 current_run: str) -> int:
    """Close every orphan intent with its real outcome; returns how many were closed.
    Each (run, connector) looked at is marked reconciled in the same transaction as the
    outcomes, so it is never scanned again; a killed run (`running`) becomes
    `interrupted` once it is reconciled on every connector it announced writes on."""
    with store.engine.connect() as connection:
        pairs = intent_store.unreconciled(connection, connectors, current_run)
        closed: dict[tuple[str, str], int] = {}
        orphans: list[IntentRow] = []
        for run_id, name in pairs:
            found = intent_store.open_intents(connection, run_id, name)
            closed[(run_id, name)] = len(found)
            orphans.extend(found)
        current: dict[tuple[str, str], JSONObject] = {}
        for name in {o["connector"] for o in orphans}:
            ids = [o["record_id"] for o in orphans if o["connector"] == name]
            for record_id, values in intent_store.crm_values(connection, name, ids):
                current[(name, record_id)] = values
    audit_rows: list[AuditRow] = []
    written_rows: list[WrittenRow] = []
    owners: list[str] = []
    lost: set[str] = set()  # people with a write that did not land: decide them again
    for intent in orphans:
        held = current.get((intent["connector"], intent["record_id"]), {}).get(intent["field"])
        landed = canonical(held) == canonical(intent["new_value"])
        audit_rows.append(recovered_row(intent, now, landed))
        if not landed:
            lost.add(intent["person_key"])
        if landed:
            written_rows.append({"connector": intent["connector"],
                                 "record_id": intent["record_id"], "field": intent["field"],
                                 "value": intent["new_value"], "written_at": now,
                                 "run_id": intent["run_id"]})
            if intent["field"] == owner_fields.get(intent["connector"]):
                owners.append(intent["person_key"])
    if closed:
        with store.transaction() as tx:
            store.append_audit(tx, audit_rows)
            # the pulled CRM values already hold what landed: only remember it as written
            store.upsert_written(tx, written_rows)
            routing_store.mark_owner_written(tx, owners, now)
            undecided.note(tx, lost, now)
            intent_store.close_runs(tx, [pair for pair, count in closed.items() if count])
            intent_store.mark_reconciled(tx, closed, now)
            # A killed run with no intent open on any connector is over.
            runs = list(dict.fromkeys(run_id for run_id, _ in closed))
            still_open = intent_store.with_open_intents(tx, runs)
            intent_store.mark_interrupted(tx, [r for r in runs if r not in still_open])
    if orphans:
        log.warning("recovery.reconciled", intents=len(orphans), landed=len(written_rows),
                    runs=len({run_id for run_id, _ in closed}))
    return len(orphans)
