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

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    Row,
    Select,
    String,
    Table,
    and_,
    exists,
    inspect,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnClause, ColumnElement
from sqlalchemy.sql.selectable import Join

from syncer.domain.json_values import JSONObject
from syncer.store import tables as t
from syncer.store.accounts import accounts
from syncer.store.audit_reasons import audit_reasons
from syncer.store.audit_refs import (
    INTENT_ID,
    audit_names,
    audit_stamps,
    audit_subjects,
    audit_texts,
)
from syncer.store.audit_storage import AuditFields
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
_INTENT: ColumnClause[int] = literal_column(str(INTENT_ID))

#: Only intent rows, by stamp (run) and connector: what recovery reads, and nothing else.
OPEN_INTENTS_INDEX = Index(
    "ix_audit_open_intents", t.audit.c.stamp_id, t.audit.c.connector_id,
    sqlite_where=t.audit.c.outcome_id == _INTENT,
    postgresql_where=t.audit.c.outcome_id == _INTENT)
#: Finds the few runs that may have intents open among all runs.
RUN_STATUS_INDEX = Index("ix_runs_status", t.runs.c.status)
#: The index schema 6 gave the audit table as it was before schema 18 (run id and
#: connector as text); schema 18 replaces it by OPEN_INTENTS_INDEX.
_LEGACY_OPEN_INTENTS = ("CREATE INDEX ix_audit_open_intents ON audit (run_id, connector) "
                        "WHERE outcome = 'intent'")


def create_schema(connection: Connection) -> None:
    """Schema 6: the reconciled-runs table and the two indexes (idempotent); on an audit
    table from before schema 18, its index of open intents as it was then."""
    reconciled_runs.create(connection, checkfirst=True)
    inspector = inspect(connection)
    legacy = "run_id" in {c["name"] for c in inspector.get_columns("audit")}
    for index in (OPEN_INTENTS_INDEX, RUN_STATUS_INDEX):
        table = index.table
        assert table is not None
        if index.name not in {ix["name"] for ix in inspector.get_indexes(table.name)}:
            if legacy and index is OPEN_INTENTS_INDEX:
                connection.execute(text(_LEGACY_OPEN_INTENTS))
            else:
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


_field = audit_names.alias("field_name")
_connector = audit_names.alias("connector_name")
_old = audit_texts.alias("old_text")
_new = audit_texts.alias("new_text")
#: what recovery needs of an intent row to write its outcome, as selected from `_joined`
_INTENT_COLUMNS = (
    t.audit.c.id, audit_stamps.c.run_id, _connector.c.name.label("connector"),
    audit_subjects.c.record_id, audit_subjects.c.person_key, _field.c.name.label("field"),
    t.audit.c.old_value, _old.c.text.label("old_text"), t.audit.c.new_value,
    _new.c.text.label("new_text"), audit_reasons.c.reasons, audit_reasons.c.model_version)
_KEY_COLUMNS = (t.audit.c.id, audit_subjects.c.record_id, _field.c.name.label("field"))


def _joined(*, values: bool) -> Join:
    """The audit rows with the run, connector, record and field they cite (and, with
    `values`, their long values and reasons): joins on primary keys, so the planners keep
    choosing the audit's own indexes."""
    a = t.audit.c
    joined = t.audit.join(audit_stamps, audit_stamps.c.id == a.stamp_id) \
        .join(audit_subjects, audit_subjects.c.id == a.subject_id) \
        .join(_field, _field.c.id == a.field_id) \
        .join(_connector, _connector.c.id == a.connector_id)
    if values:
        joined = joined.outerjoin(_old, _old.c.id == a.old_text_id) \
            .outerjoin(_new, _new.c.id == a.new_text_id) \
            .outerjoin(audit_reasons, audit_reasons.c.id == a.reasons_id)
    return joined


class IntentRow(AuditFields):
    """An open intent as recovery reads it (`_INTENT_COLUMNS`, reasons decoded)."""

    id: int
    reasons: list[ReasonJson]


def _rows(result: Iterable[Row[tuple[object, ...]]]) -> list[IntentRow]:
    decoded: dict[str | None, list[ReasonJson]] = {}
    rows: list[IntentRow] = []
    for row in result:
        text_ = row.reasons
        if text_ not in decoded:
            decoded[text_] = json.loads(text_) if text_ else []
        rows.append({
            "id": int(row.id), "run_id": str(row.run_id), "connector": str(row.connector),
            "record_id": str(row.record_id), "person_key": str(row.person_key),
            "field": str(row.field),
            "old_value": row.old_value if row.old_value is not None else row.old_text,
            "new_value": row.new_value if row.new_value is not None else row.new_text,
            "reasons": decoded[text_], "model_version": str(row.model_version or "")})
    return rows


def _of_run(run_id: str, connector: str) -> list[ColumnElement[bool]]:
    return [audit_stamps.c.run_id == run_id, _connector.c.name == connector]


def open_intents_query(run_id: str, connector: str, *, keys_only: bool = False
                       ) -> Select[tuple[object, ...]]:
    """The intent rows of one run on one connector (with `keys_only`: their id, record
    and field), through ix_audit_open_intents (tests EXPLAIN it)."""
    columns = _KEY_COLUMNS if keys_only else _INTENT_COLUMNS
    return select(*columns).select_from(_joined(values=not keys_only)).where(
        *_of_run(run_id, connector), t.audit.c.outcome_id == _INTENT).order_by(t.audit.c.id)


def open_intents(connection: Connection, run_id: str, connector: str) -> list[IntentRow]:
    """Intent rows of this run on this connector that have no outcome row. The run's
    outcome rows are read first (once: then the run is marked); when it has some, only the
    keys of its intents are read, and the whole rows of the open ones alone."""
    closed = {(str(row.record_id), str(row.field)) for row in connection.execute(
        select(*_KEY_COLUMNS).select_from(_joined(values=False)).where(
            *_of_run(run_id, connector), t.audit.c.outcome_id != _INTENT))}
    if not closed:
        return _rows(connection.execute(open_intents_query(run_id, connector)))
    ids = [int(row.id) for row in connection.execute(
        open_intents_query(run_id, connector, keys_only=True))
        if (str(row.record_id), str(row.field)) not in closed]
    found: list[IntentRow] = []
    for start in range(0, len(ids), _IDS_PER_QUERY):
        found.extend(_rows(connection.execute(
            select(*_INTENT_COLUMNS).select_from(_joined(values=True))
            .where(t.audit.c.id.in_(ids[start:start + _IDS_PER_QUERY]))
            .order_by(t.audit.c.id))))
    return found


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


def intent_connectors(connection: Connection, run_id: str) -> set[str]:
    """The connectors a run announced writes on (read through the partial index)."""
    return {str(name) for name in connection.execute(
        select(_connector.c.name).distinct().select_from(_joined(values=False)).where(
            audit_stamps.c.run_id == run_id, t.audit.c.outcome_id == _INTENT)).scalars()}


def reconciled_connectors(connection: Connection, run_id: str) -> set[str]:
    return set(connection.execute(select(reconciled_runs.c.connector).where(
        reconciled_runs.c.run_id == run_id)).scalars())


def mark_interrupted(connection: Connection, run_ids: Sequence[str]) -> None:
    """Killed runs (still `running`) whose intents are all closed: `interrupted`."""
    if run_ids:
        connection.execute(update(t.runs).where(t.runs.c.run_id.in_(list(run_ids)),
                                                t.runs.c.status == "running")
                           .values(status="interrupted"))
