"""The audit trail: every audit row a run appends is built here, one constructor per kind.

A row is one field of one record: when, run, connector, record, person, field, old and new
value, outcome, error, model version and the reasons (docs/DESIGN.md, "audit"). The store
chains the rows it is handed (syncer/store/audit.py); this module decides what they say:

- `decision_row`: a field a decision writes, with its outcome (`written`, `failed`), or
  `kept_manual_edit`; the writer builds it as an `intent` first, announced before the CRM
  is called (write-ahead, syncer/store/intents.py: not an audit row since schema 24);
- `recovered_row`: the outcome of an intent a killed run left open (`written` when the
  value landed, else `not_written`), closed by the next run (syncer/run/recovery.py);
- `creation_row`: a person created in (or linked to) a CRM, and each field written on it;
- `succession_row`: a record that carries on as another (a converted lead, a merge);
- `discarded_row`: a field of a dead letter an admin gave up in the web admin.

(The pipeline's `duplicate` identity rows are still built in syncer/run/pipeline.py.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from syncer.domain.types import Decision, Reason, Succession
from syncer.store.audit_storage import AuditFields
from syncer.store.decision_json import ReasonJson, reason_to_json, reasons_to_json
from syncer.store.intents import IntentRow

#: a decided field: announced, then written or failed; or left alone (set by hand)
DecisionOutcome = Literal["intent", "written", "failed", "kept_manual_edit"]
#: a person created in a CRM (identity row), linked to one that existed, or a field
#: written on a created record; `failed` when the creation failed
CreationOutcome = Literal["created", "linked", "written", "failed"]
#: the field name of the rows about a record's identity rather than one of its fields
IDENTITY = "identity"
#: the outcome of a dead letter's field an admin gave up (never written)
DISCARDED = "discarded"
RECOVERED = "recovered: the write reached the CRM before its run was interrupted"
LOST = "interrupted before the write reached the CRM; the next diff writes it again"


class AuditRow(AuditFields):
    """One row as handed to `Store.append_audit` (the store adds id and hashes)."""

    at: datetime
    outcome: str
    error: str | None
    reasons: list[ReasonJson]


@dataclass(frozen=True)
class RunStamp:
    """What every row of one run shares: its time and its id."""

    at: datetime
    run_id: str


def reasons_of(decision: Decision, note: Reason | None = None) -> list[ReasonJson]:
    """A decision's reasons as stored, with a note (a rollback's) after them."""
    reasons = reasons_to_json(decision.reasons)
    if note is not None:
        reasons.append(reason_to_json(note))
    return reasons


def decision_row(stamp: RunStamp, connector: str, record_id: str, field: str,
                 old: str | None, new: str | None, decision: Decision,
                 outcome: DecisionOutcome, *, error: str | None = None,
                 reasons: list[ReasonJson] | None = None) -> AuditRow:
    """A field a decision sets; `reasons` defaults to the decision's."""
    return {"at": stamp.at, "run_id": stamp.run_id, "connector": connector,
            "record_id": record_id, "person_key": decision.key, "field": field,
            "old_value": old, "new_value": new, "outcome": outcome, "error": error,
            "reasons": reasons_of(decision) if reasons is None else reasons,
            "model_version": decision.model_version}


def recovered_row(intent: IntentRow, at: datetime, landed: bool) -> AuditRow:
    """The outcome of an open intent, found at `at`: the intent row (not its id: the
    outcome row gets its own) with `written` (`RECOVERED`) when the CRM holds its value,
    else `not_written` (`LOST`)."""
    return {"at": at, "run_id": intent["run_id"], "connector": intent["connector"],
            "record_id": intent["record_id"], "person_key": intent["person_key"],
            "field": intent["field"], "old_value": intent["old_value"],
            "new_value": intent["new_value"],
            "outcome": "written" if landed else "not_written",
            "error": RECOVERED if landed else LOST, "reasons": intent["reasons"],
            "model_version": intent["model_version"]}


def creation_row(stamp: RunStamp, connector: str, person_key: str, decision: Decision,
                 record_id: str, field: str, new: str | None, outcome: CreationOutcome, *,
                 error: str | None = None) -> AuditRow:
    """A creation: the `identity` row of the person created, linked or failed (record
    "" when it failed), or a field written on the new record."""
    return {"at": stamp.at, "run_id": stamp.run_id, "connector": connector,
            "record_id": record_id, "person_key": person_key, "field": field,
            "old_value": None, "new_value": new, "outcome": outcome, "error": error,
            "reasons": reasons_of(decision), "model_version": decision.model_version}


def succession_row(stamp: RunStamp, succession: Succession, person_key: str,
                   folded: str | None, model_version: str) -> AuditRow:
    """A record that stopped taking writes and carries on as another; `folded`: a person
    merged into this one by the move."""
    detail = (f"{succession.old_id} {succession.cause} into {succession.new_id}"
              + (f"; person {folded} folded into this one" if folded else ""))
    return {"at": stamp.at, "run_id": stamp.run_id, "connector": succession.source,
            "record_id": succession.old_id, "person_key": person_key, "field": IDENTITY,
            "old_value": succession.old_id, "new_value": succession.new_id,
            "outcome": succession.cause, "error": None,
            "reasons": [{"rule_id": f"identity.{succession.cause}", "points": 0.0,
                         "detail": detail, "evidence_at": succession.at.isoformat()
                         if succession.at else None}],
            "model_version": model_version}


def discarded_row(stamp: RunStamp, connector: str, record_id: str, person_key: str,
                  field: str, value: str | None, why: str, model_version: str) -> AuditRow:
    """A field of a dead letter closed unwritten; `why` says who gave it up and which
    letter it was."""
    return {"at": stamp.at, "run_id": stamp.run_id, "connector": connector,
            "record_id": record_id, "person_key": person_key, "field": field,
            "old_value": None, "new_value": value, "outcome": DISCARDED, "error": why,
            "reasons": [], "model_version": model_version}


def duplicate_row(stamp: RunStamp, connector: str, record_id: str, primary: str,
                  decision: Decision) -> AuditRow:
    """A record newly flagged as a duplicate of `primary` (the one syncer writes), so an
    admin can merge them."""
    return {"at": stamp.at, "run_id": stamp.run_id, "connector": connector,
            "record_id": record_id, "person_key": decision.key, "field": IDENTITY,
            "old_value": None, "new_value": f"duplicate of {primary}", "outcome": "duplicate",
            "error": None,
            "reasons": [{"rule_id": "identity.duplicate", "points": 0.0,
                         "detail": f"{record_id} shares this person with {primary}; "
                                   f"syncer writes only to {primary}",
                         "evidence_at": None}],
            "model_version": decision.model_version}
