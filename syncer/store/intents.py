"""The queries of crash recovery: which runs may have left write intents open, their open
intents, and the mark that a run was reconciled on a connector.

Recovery must cost what is open, not what ever failed. So the open intents of a run are
read through `ix_audit_open_intents`, a partial index holding only intent rows (by run
and connector), and once a run's intents on a connector are closed the pair is recorded
in `reconciled_runs`, in the same transaction as the outcome rows: that run is never
looked at again for that connector, however many runs failed before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypedDict

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    RowMapping,
    Select,
    String,
    Table,
    and_,
    exists,
    inspect,
    literal_column,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from syncer.domain.json_values import JSONObject
from syncer.store import tables as t
from syncer.store.audit_reasons import audit_reasons, with_reasons
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

#: a literal, not a bound parameter: only then do the planners match the partial index
_INTENT: ColumnClause[str] = literal_column("'intent'")

#: Only intent rows, by run and connector: what recovery reads, and nothing else.
OPEN_INTENTS_INDEX = Index(
    "ix_audit_open_intents", t.audit.c.run_id, t.audit.c.connector,
    sqlite_where=t.audit.c.outcome == _INTENT, postgresql_where=t.audit.c.outcome == _INTENT)
#: Finds the few runs that may have intents open among all runs.
RUN_STATUS_INDEX = Index("ix_runs_status", t.runs.c.status)


def create_schema(connection: Connection) -> None:
    """Schema 6: the reconciled-runs table and the two indexes (idempotent)."""
    reconciled_runs.create(connection, checkfirst=True)
    for index in (OPEN_INTENTS_INDEX, RUN_STATUS_INDEX):
        table = index.table
        assert table is not None
        if index.name not in {ix["name"] for ix in inspect(connection).get_indexes(table.name)}:
            index.create(connection)


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


#: what recovery needs of an intent row to write its outcome
_INTENT_COLUMNS = ("id", "run_id", "connector", "record_id", "person_key", "field",
                   "old_value", "new_value", "reasons", "model_version")


def _columns(names: Sequence[str]) -> list[ColumnElement[object]]:
    """The audit columns named, selected from `with_reasons()`; `reasons` as the JSON text
    the row cites (decoded once per distinct value by `_rows`: the fields of one decision
    share it)."""
    cited = {"reasons": audit_reasons.c.reasons, "model_version": audit_reasons.c.model_version}
    return [cited[name] if name in cited else t.audit.c[name] for name in names]


class IntentRow(TypedDict):
    """An open intent as recovery reads it (`_INTENT_COLUMNS`, reasons decoded)."""

    id: int
    run_id: str
    connector: str
    record_id: str
    person_key: str
    field: str
    old_value: str | None
    new_value: str | None
    reasons: list[ReasonJson]
    model_version: str


def _rows(result: Iterable[RowMapping]) -> list[IntentRow]:
    decoded: dict[str | None, list[ReasonJson]] = {}
    rows = []
    for row in result:
        text: str | None = row["reasons"]
        if text not in decoded:
            decoded[text] = json.loads(text) if text else []
        rows.append(IntentRow(
            id=row["id"], run_id=row["run_id"], connector=row["connector"],
            record_id=row["record_id"], person_key=row["person_key"], field=row["field"],
            old_value=row["old_value"], new_value=row["new_value"], reasons=decoded[text],
            model_version=row["model_version"]))
    return rows


def open_intents_query(run_id: str, connector: str, *, keys_only: bool = False
                       ) -> Select[*tuple[object, ...]]:
    """The intent rows of one run on one connector (with `keys_only`: their id, record
    and field), through ix_audit_open_intents (tests EXPLAIN it)."""
    names = ("id", "record_id", "field") if keys_only else _INTENT_COLUMNS
    return select(*_columns(names)).select_from(with_reasons()).where(
        t.audit.c.run_id == run_id, t.audit.c.connector == connector,
        t.audit.c.outcome == _INTENT).order_by(t.audit.c.id)


def open_intents(connection: Connection, run_id: str, connector: str) -> list[IntentRow]:
    """Intent rows of this run on this connector that have no outcome row. The run's
    outcome rows are read first (once: then the run is marked); when it has some, only the
    keys of its intents are read, and the whole rows of the open ones alone."""
    closed = {(str(row.record_id), str(row.field)) for row in connection.execute(
        select(t.audit.c.record_id, t.audit.c.field).where(
            t.audit.c.run_id == run_id, t.audit.c.connector == connector,
            t.audit.c.outcome != _INTENT))}
    if not closed:
        return _rows(connection.execute(open_intents_query(run_id, connector)).mappings())
    ids = [int(row.id) for row in connection.execute(
        open_intents_query(run_id, connector, keys_only=True))
        if (str(row.record_id), str(row.field)) not in closed]
    found: list[IntentRow] = []
    for start in range(0, len(ids), _IDS_PER_QUERY):
        found.extend(_rows(connection.execute(
            select(*_columns(_INTENT_COLUMNS)).select_from(with_reasons())
            .where(t.audit.c.id.in_(ids[start:start + _IDS_PER_QUERY]))
            .order_by(t.audit.c.id)).mappings()))
    return found


def crm_values(connection: Connection, connector: str,
               record_ids: Sequence[str]) -> Iterator[tuple[str, JSONObject]]:
    """(record id, the CRM values last pulled) of these records of one connector."""
    ids = sorted(set(record_ids))
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start:start + _IDS_PER_QUERY]
        for row in connection.execute(select(t.records.c.record_id, t.records.c.crm_values)
                                      .where(t.records.c.connector == connector,
                                             t.records.c.record_id.in_(chunk))):
            yield str(row.record_id), dict(row.crm_values or {})


def mark_reconciled(connection: Connection, closed: dict[tuple[str, str], int],
                    at: datetime) -> None:
    """Record (run, connector) pairs as reconciled, with how many intents each closed."""
    if closed:
        connection.execute(reconciled_runs.insert(), [
            {"run_id": run_id, "connector": name, "reconciled_at": at, "closed": count}
            for (run_id, name), count in closed.items()])


def intent_connectors(connection: Connection, run_id: str) -> set[str]:
    """The connectors a run announced writes on (read through the partial index)."""
    return set(connection.execute(select(t.audit.c.connector).distinct().where(
        t.audit.c.run_id == run_id, t.audit.c.outcome == _INTENT)).scalars())


def reconciled_connectors(connection: Connection, run_id: str) -> set[str]:
    return set(connection.execute(select(reconciled_runs.c.connector).where(
        reconciled_runs.c.run_id == run_id)).scalars())


def mark_interrupted(connection: Connection, run_ids: Sequence[str]) -> None:
    """Killed runs (still `running`) whose intents are all closed: `interrupted`."""
    if run_ids:
        connection.execute(update(t.runs).where(t.runs.c.run_id.in_(list(run_ids)),
                                                t.runs.c.status == "running")
                           .values(status="interrupted"))
