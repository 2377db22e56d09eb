"""Write-ahead intents and the queries of crash recovery.

Before a batch goes to a CRM, the intent to write each of its fields is committed as one
`write_intents` row (the batch); the transaction that stores the batch's outcomes (one
audit row per field, syncer/run/push.py) deletes it. So every batch still in the table is
open: its run was killed, failed or stopped between the call and the outcome, and the next
run reconciles it from what the CRM holds (syncer/run/recovery.py).

The audit log keeps one row per field written or failed (docs/DESIGN.md, "audit"); the
intents are not audit rows (before schema 24 they were: each field's `intent` row, hashed
into the chain beside its outcome row, cost as much as the outcome row itself).

Recovery must cost what is open, not what ever failed. The open batches of a run are read
through `ix_write_intents_run`, and once a run's intents on a connector are closed the
pair is recorded in `reconciled_runs`, in the same transaction as the outcome rows: that
run is never looked at again for that connector, however many runs failed before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    and_,
    delete,
    exists,
    inspect,
    select,
    text,
    update,
)

from syncer.domain.json_values import JSONObject, parse_json
from syncer.store import tables as t
from syncer.store.accounts import accounts
from syncer.store.audit_storage import AuditFields
from syncer.store.compact_json import json_bytes
from syncer.store.decision_json import ReasonJson
from syncer.store.tables import metadata

#: Run statuses that can leave intents open: killed (`running`), failed, lost its lock or
#: stopped by a rate-limit deadline inside a push. Other runs end their writes with
#: outcomes (succeeded, partial) or stop before or between pushes (stopped,
#: budget_exhausted, skipped).
UNFINISHED = ("running", "failed", "lost_lock", "rate_limited")
#: How many record ids one lookup of CRM values names (SQLite's bound-variable cap).
_IDS_PER_QUERY = 5_000

#: (run, connector) pairs whose intents are all closed: never scanned again.
reconciled_runs = Table(
    "reconciled_runs", metadata,
    Column("run_id", String(40), primary_key=True),
    Column("connector", String(40), primary_key=True),
    Column("reconciled_at", DateTime(timezone=True), nullable=False),
    #: how many intents this reconciliation closed (0: the run had none open here)
    Column("closed", Integer, nullable=False),
)

#: Schema 24: one row per batch announced and not yet closed (see the module docstring).
#: `fields`: JSON {"reasons": [list, ...], "fields": [[record id, person key, field, old
#: value, new value, model version, index into reasons], ...]}, each decision's reasons
#: once.
write_intents = Table(
    "write_intents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("connector", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("fields", LargeBinary, nullable=False),
    #: a run's open batches on one connector, in the order they were announced
    Index("ix_write_intents_run", "run_id", "connector", "id"),
)

#: Finds the few runs that may have intents open among all runs.
RUN_STATUS_INDEX = Index("ix_runs_status", t.runs.c.status)
#: The index of open intent rows schema 6 gave the audit table as it was before schema 18
#: (run id and connector as text); schema 24 drops it (syncer/store/intents_legacy.py).
_LEGACY_OPEN_INTENTS = ("CREATE INDEX ix_audit_open_intents ON audit (run_id, connector) "
                        "WHERE outcome = 'intent'")


class IntentFields(AuditFields):
    """A field to announce: what its audit row will say, with its decision's reasons."""

    reasons: list[ReasonJson]


class IntentRow(IntentFields):
    """An open intent as recovery reads it: one field of an announced batch (`id`: the
    batch's)."""

    id: int


def create_schema(connection: Connection) -> None:
    """Schema 6: the reconciled-runs table and the index of run status (idempotent); on
    an audit table from before schema 18, its index of open intent rows as it was then."""
    reconciled_runs.create(connection, checkfirst=True)
    inspector = inspect(connection)
    if RUN_STATUS_INDEX.name not in {ix["name"] for ix in inspector.get_indexes("runs")}:
        RUN_STATUS_INDEX.create(connection)
    legacy = "run_id" in {c["name"] for c in inspector.get_columns("audit")}
    if legacy and "ix_audit_open_intents" not in {
            ix["name"] for ix in inspector.get_indexes("audit")}:
        connection.execute(text(_LEGACY_OPEN_INTENTS))


def unreconciled(connection: Connection, connectors: Sequence[str],
                 current_run: str) -> list[tuple[str, str]]:
    """(run, connector) pairs of runs that may have left intents open on these connectors
    and have not been reconciled there yet, oldest run first."""
    pairs: list[tuple[str, str, datetime]] = []
    for name in connectors:
        done = exists().where(and_(reconciled_runs.c.run_id == t.runs.c.run_id,
                                   reconciled_runs.c.connector == name))
        query = select(t.runs.c.run_id, t.runs.c.started_at).where(
            t.runs.c.status.in_(UNFINISHED), t.runs.c.run_id != current_run,
            t.runs.c.dry_run == 0, ~done)
        pairs.extend((run_id, name, started) for run_id, started in connection.execute(query))
    pairs.sort(key=lambda pair: (pair[2], pair[0], pair[1]))
    return [(run_id, name) for run_id, name, _ in pairs]


def announce(connection: Connection, run_id: str, connector: str, at: datetime,
             rows: Iterable[IntentFields]) -> int:
    """Record the intent to write these fields (one batch to one CRM) and return its id,
    which `close` takes once the outcomes are stored. Each distinct reasons list (a
    decision's, shared by the rows of its fields) is encoded once."""
    lists: dict[int, int] = {}
    reasons: list[list[ReasonJson]] = []
    fields: list[list[object]] = []
    for row in rows:
        cited = row["reasons"]
        slot = lists.get(id(cited))
        if slot is None:
            slot = lists[id(cited)] = len(reasons)
            reasons.append(cited)
        fields.append([row["record_id"], row["person_key"], row["field"], row["old_value"],
                       row["new_value"], row["model_version"], slot])
    found = connection.execute(write_intents.insert().values(
        run_id=run_id, connector=connector, at=at,
        fields=json_bytes({"reasons": reasons, "fields": fields})))
    key = found.inserted_primary_key
    assert key is not None
    return int(key[0])


def close(connection: Connection, intent_id: int) -> None:
    """Forget an announced batch: its outcomes are stored in this same transaction."""
    connection.execute(delete(write_intents).where(write_intents.c.id == intent_id))


def _rows(run_id: str, connector: str, intent_id: int, stored: bytes) -> Iterator[IntentRow]:
    """The fields of one stored batch (as `announce` encoded them)."""
    batch = cast(dict[str, Any], parse_json(stored))
    reasons: list[list[ReasonJson]] = batch["reasons"]
    for record_id, person_key, field, old, new, model_version, slot in batch["fields"]:
        yield {"id": intent_id, "run_id": run_id, "connector": connector,
               "record_id": record_id, "person_key": person_key, "field": field,
               "old_value": old, "new_value": new, "model_version": model_version,
               "reasons": reasons[slot]}


def open_intents_query(run_id: str, connector: str) -> Select[int, bytes]:
    """The open batches of one run on one connector, through ix_write_intents_run (tests
    EXPLAIN it)."""
    c = write_intents.c
    return select(c.id, c.fields).where(c.run_id == run_id, c.connector == connector) \
        .order_by(c.id)


def open_intents(connection: Connection, run_id: str, connector: str) -> list[IntentRow]:
    """The fields this run announced on this connector and never closed, in the order it
    announced them: a batch is deleted in the transaction that stores its outcomes, so
    every batch still here is open."""
    return [row for intent_id, stored in connection.execute(
        open_intents_query(run_id, connector))
        for row in _rows(run_id, connector, int(intent_id), bytes(stored))]


def close_runs(connection: Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Forget every open batch of these (run, connector) pairs: recovery has stored their
    outcomes in this same transaction."""
    for run_id, connector in pairs:
        connection.execute(delete(write_intents).where(
            write_intents.c.run_id == run_id, write_intents.c.connector == connector))


def crm_values(connection: Connection, connector: str,
               record_ids: Sequence[str]) -> Iterator[tuple[str, JSONObject]]:
    """(record id, the CRM values last pulled) of these records of one connector: person
    records and account records (syncer/store/accounts.py) alike, merged by id (an
    account's fields are never a person's, so a HubSpot contact and company sharing a
    number do not mix values up)."""
    ids = sorted(set(record_ids))
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start:start + _IDS_PER_QUERY]
        found: dict[str, JSONObject] = {}
        for table in (t.records, accounts):
            for row in connection.execute(select(table.c.record_id, table.c.crm_values)
                                          .where(table.c.connector == connector,
                                                 table.c.record_id.in_(chunk))):
                found.setdefault(str(row.record_id), {}).update(row.crm_values or {})
        yield from found.items()


def mark_reconciled(connection: Connection, closed: dict[tuple[str, str], int],
                    at: datetime) -> None:
    """Record (run, connector) pairs as reconciled, with how many intents each closed."""
    if closed:
        connection.execute(reconciled_runs.insert(), [
            {"run_id": run_id, "connector": name, "reconciled_at": at, "closed": count}
            for (run_id, name), count in closed.items()])


def with_open_intents(connection: Connection, run_ids: Sequence[str]) -> set[str]:
    """Those of these runs that still have an open batch on some connector."""
    if not run_ids:
        return set()
    return {str(run_id) for run_id in connection.execute(
        select(write_intents.c.run_id).distinct()
        .where(write_intents.c.run_id.in_(list(run_ids)))).scalars()}


def mark_interrupted(connection: Connection, run_ids: Sequence[str]) -> None:
    """Killed runs (still `running`) whose intents are all closed: `interrupted`."""
    if run_ids:
        connection.execute(update(t.runs).where(t.runs.c.run_id.in_(list(run_ids)),
                                                t.runs.c.status == "running")
                           .values(status="interrupted"))
