"""Schema 24: the write-ahead intents leave the audit log for a table of their own.

Before schema 24 each field's intent was an audit row (outcome `intent`, hashed into the
chain) and an open intent was one with no outcome row of its run for the same record and
field, found through a partial index of intent rows. This step carries the intents still
open (runs that may have left some, not yet reconciled) into `write_intents`, so the next
run reconciles them as it would its own, and drops that index: the intent rows already in
the audit stay, chained, as the history they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, Row, exists, select, text

from syncer.store import intents
from syncer.store import tables as t
from syncer.store.audit_reasons import audit_reasons
from syncer.store.audit_refs import (
    INTENT_ID,
    audit_names,
    audit_stamps,
    audit_subjects,
    audit_texts,
)
from syncer.store.decision_json import ReasonJson
from syncer.store.intents import IntentFields

#: how many fields one carried-over batch holds (any size reconciles alike)
_FIELDS_PER_BATCH = 1_000
#: how many runs' rows are read at once
_RUNS_PER_READ = 20

_field = audit_names.alias("field_name")
_connector = audit_names.alias("connector_name")
_old = audit_texts.alias("old_text")
_new = audit_texts.alias("new_text")


def _intent_rows(connection: Connection, run_ids: list[str]) -> Iterator[Any]:
    """Every intent and outcome row of these runs on the connectors they are not
    reconciled on (what recovery would have read at the next start), by run, connector
    and id."""
    a = t.audit.c
    joined = t.audit.join(audit_stamps, audit_stamps.c.id == a.stamp_id) \
        .join(audit_subjects, audit_subjects.c.id == a.subject_id) \
        .join(_field, _field.c.id == a.field_id) \
        .join(_connector, _connector.c.id == a.connector_id) \
        .outerjoin(_old, _old.c.id == a.old_text_id) \
        .outerjoin(_new, _new.c.id == a.new_text_id) \
        .outerjoin(audit_reasons, audit_reasons.c.id == a.reasons_id)
    yield from connection.execute(select(
        a.id, a.outcome_id, audit_stamps.c.at, audit_stamps.c.run_id,
        _connector.c.name.label("connector"),
        audit_subjects.c.record_id, audit_subjects.c.person_key, _field.c.name.label("field"),
        a.old_value, _old.c.text.label("old_text"), a.new_value,
        _new.c.text.label("new_text"), audit_reasons.c.reasons, audit_reasons.c.model_version)
        .select_from(joined).where(audit_stamps.c.run_id.in_(run_ids), ~exists().where(
            intents.reconciled_runs.c.run_id == audit_stamps.c.run_id,
            intents.reconciled_runs.c.connector == _connector.c.name))
        .order_by(audit_stamps.c.run_id, _connector.c.name, a.id))


def move_open_intents(connection: Connection) -> None:
    """Schema 24: create `write_intents`, fill it with the intents the audit holds open,
    and drop the audit's index of intent rows."""
    intents.write_intents.create(connection, checkfirst=True)
    runs = [str(run_id) for run_id in connection.execute(
        select(t.runs.c.run_id).where(t.runs.c.status.in_(intents.UNFINISHED),
                                      t.runs.c.dry_run == 0)).scalars()]
    for start in range(0, len(runs), _RUNS_PER_READ):  # read whole: announce writes
        rows = list(_intent_rows(connection, runs[start:start + _RUNS_PER_READ]))
        for (run_id, connector), group in groupby(rows, lambda r: (r.run_id, r.connector)):
            _carry(connection, str(run_id), str(connector), list(group))
    connection.execute(text("DROP INDEX IF EXISTS ix_audit_open_intents"))


def _carry(connection: Connection, run_id: str, connector: str,
           rows: list[Row[Any]]) -> None:
    """Announce again the intents among one run's rows on one connector that have no
    outcome row (the same record and field, any outcome but `intent`)."""
    closed = {(r.record_id, r.field) for r in rows if r.outcome_id != INTENT_ID}
    decoded: dict[object, list[ReasonJson]] = {}
    open_: list[IntentFields] = []
    for row in rows:
        if row.outcome_id != INTENT_ID or (row.record_id, row.field) in closed:
            continue
        if row.reasons not in decoded:
            decoded[row.reasons] = json.loads(str(row.reasons)) if row.reasons else []
        open_.append({
            "run_id": run_id, "connector": connector, "record_id": str(row.record_id),
            "person_key": str(row.person_key), "field": str(row.field),
            "old_value": _text(row.old_value, row.old_text),
            "new_value": _text(row.new_value, row.new_text),
            "model_version": str(row.model_version or ""), "reasons": decoded[row.reasons]})
    for start in range(0, len(open_), _FIELDS_PER_BATCH):
        batch = open_[start:start + _FIELDS_PER_BATCH]
        intents.announce(connection, run_id, connector, rows[0].at, batch)


def _text(short: object, long: object) -> str | None:
    value = short if short is not None else long
    return None if value is None else str(value)
