"""The state schema: one database for records, activities, decisions, writes, audit and runs.

SQLAlchemy Core tables that work the same on SQLite (the zero-set-up default) and
PostgreSQL (production). Times are stored as timezone-aware UTC datetimes. On SQLite the
big tables keep compact forms (schema 9 for the audit, 16 for records, activities,
decisions and written: syncer/store/compact_state.py); the code sees the same values.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from syncer.store.column_types import HashLink, MicroTime, Sha256Hex
from syncer.store.compact_json import PackedJSON

metadata = MetaData()

TZ = DateTime(timezone=True)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", TZ, nullable=False),
)

#: One row per person record in one connector, as last pulled.
records = Table(
    "records", metadata,
    Column("connector", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("object_type", String(40), nullable=False),
    Column("person_key", String(320), nullable=False),
    Column("fields", PackedJSON, nullable=False),
    Column("crm_values", PackedJSON, nullable=False),
    Column("updated_at", MicroTime()),
    Column("pulled_at", MicroTime(), nullable=False),
    #: the normalized email (identity lookups); a changed email keeps the record's person
    Column("email", String(320)),
    #: set when the record stopped taking writes (converted lead, merged-away duplicate):
    #: the record the person carries on as, and why
    Column("successor_id", String(64)),
    Column("retired_cause", String(20)),
    #: set while another record of the same connector is this person's primary record
    Column("duplicate_of", String(64)),
    Index("ix_records_person_key", "person_key"),
    Index("ix_records_email", "email"),
    #: the retired records a record succeeds (identity: a converted lead's person carries
    #: on as its contact); only retired records are in it, so it stays small
    Index("ix_records_successor", "connector", "successor_id",
          sqlite_where=text("successor_id IS NOT NULL"),
          postgresql_where=text("successor_id IS NOT NULL")),
)

#: Activities keyed by their id in the source system, so re-pulls never double count.
activities = Table(
    "activities", metadata,
    Column("connector", String(40), primary_key=True),
    Column("source_id", String(128), primary_key=True),
    Column("record_id", String(64), nullable=False),
    Column("type", String(40), nullable=False),
    Column("occurred_at", MicroTime(), nullable=False),
    Column("attributes", PackedJSON, nullable=False),
    Index("ix_activities_record", "connector", "record_id"),
)

#: The latest decision per person (the history of changes lives in the audit log).
decisions = Table(
    "decisions", metadata,
    Column("person_key", String(320), primary_key=True),
    Column("stage", String(20), nullable=False),
    Column("score", Integer, nullable=False),
    Column("fit_points", Float, nullable=False),
    Column("engagement_points", Float, nullable=False),
    Column("fit_grade", String(8), nullable=False),
    Column("owner_email", String(320)),
    Column("reasons", PackedJSON, nullable=False),
    Column("model_version", String(80), nullable=False),
    Column("decided_at", MicroTime(), nullable=False),
    #: every named score with its ledger (null for decisions made before schema 4)
    Column("scores", PackedJSON),
)

#: What syncer last wrote to each CRM field: the base for respecting manual edits.
written = Table(
    "written", metadata,
    Column("connector", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("field", String(80), primary_key=True),
    Column("value", Text),
    Column("written_at", MicroTime(), nullable=False),
    Column("run_id", String(40), nullable=False),
    #: "syncer" for our writes; "manual" when a person's later edit is being respected.
    Column("origin", String(10), nullable=False, server_default="syncer"),
    # On SQLite the rows live in the primary-key b-tree: the text key stored once.
    sqlite_with_rowid=False,
)

#: One row per field written (or that failed for good). Append-only. Compact since
#: schema 9 (syncer/store/column_types.py): the hashes as raw bytes on SQLite, and the
#: decision's reasons and model version stored once in audit_reasons
#: (syncer/store/audit_reasons.py) and cited by `reasons_id`. Since schema 18 a row cites
#: its run and time, its connector, record and person, its field name, outcome and long
#: values as integers (syncer/store/audit_refs.py); syncer/store/audit.py reads the rows
#: back as text, exactly as before.
audit = Table(
    "audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    #: audit_stamps.id: the run and the time
    Column("stamp_id", Integer, nullable=False),
    #: audit_subjects.id: connector, record id and person key
    Column("subject_id", Integer, nullable=False),
    #: audit_names.id of the connector, field name and outcome (`intent` is always 1)
    Column("connector_id", Integer, nullable=False),
    Column("field_id", Integer, nullable=False),
    Column("outcome_id", Integer, nullable=False),
    #: a value shorter than audit_refs.LONG_VALUE; a longer one is audit_texts.id
    Column("old_value", Text),
    Column("new_value", Text),
    Column("old_text_id", Integer),
    Column("new_text_id", Integer),
    Column("error", Text),
    # The hash chain (syncer/store/audit.py): sha256 of this row's canonical form and
    # prev_hash, so an edited, removed or inserted row breaks the chain. Always set by
    # AuditLog.append; nullable only because migrated databases gained them later. On
    # SQLite prev_hash keeps the first bytes only (column_types.HashLink): the rest is the
    # previous row's row_hash.
    Column("prev_hash", HashLink()),
    Column("row_hash", Sha256Hex()),
    #: the row's reasons and model version: audit_reasons.id
    Column("reasons_id", BigInteger().with_variant(Integer, "sqlite")),
    Index("ix_audit_stamp", "stamp_id"),
    Index("ix_audit_subject", "subject_id"),
)

#: The head of the audit hash chain: one row, locked by every append so appends from
#: several processes are serialised and each links to the true previous row.
audit_chain = Table(
    "audit_chain", metadata,
    Column("name", String(40), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("updated_at", TZ, nullable=False),
)

#: One row per archive file written by the retention job: the chain head at the cut, so
#: the remaining rows still verify, and the file's checksum, so the archive can be checked.
audit_archives = Table(
    "audit_archives", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("created_at", TZ, nullable=False),
    Column("cutoff", TZ, nullable=False),
    Column("first_id", BigInteger, nullable=False),
    Column("last_id", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("cut_hash", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(40), primary_key=True),
    Column("connectors", String(400), nullable=False),
    Column("started_at", TZ, nullable=False),
    Column("finished_at", TZ),
    Column("status", String(20), nullable=False),
    Column("dry_run", Integer, nullable=False),
    Column("stats", JSON, nullable=False),
    Column("error", Text),
    Index("ix_runs_started", "started_at"),
)

#: Per connector and stream, how far pulls have got.
cursors = Table(
    "cursors", metadata,
    Column("connector", String(40), primary_key=True),
    Column("stream", String(40), primary_key=True),
    Column("value", TZ, nullable=False),
)

#: Persisted counters (e.g. the round-robin position), so rotation survives restarts.
counters = Table(
    "counters", metadata,
    Column("name", String(80), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: Owner assignments made by routing: why each owner was chosen and how fast the owner
#: reached the CRM (speed to lead). A person recycled and qualified again gets a new row.
assignments = Table(
    "assignments", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("person_key", String(320), nullable=False),
    Column("owner_email", String(320), nullable=False),
    Column("team", String(64)),
    Column("rule", String(80), nullable=False),
    Column("reason", Text, nullable=False),
    Column("stage", String(20), nullable=False),
    Column("qualified_at", TZ, nullable=False),
    Column("assigned_at", TZ, nullable=False),
    Column("owner_written_at", TZ),
    Column("run_id", String(40), nullable=False),
    Index("ix_assignments_person", "person_key"),
    Index("ix_assignments_owner_day", "owner_email", "assigned_at"),
)

#: Writes that failed for good (after a retry on their own), kept for `syncer dead-letters`.
dead_letters = Table(
    "dead_letters", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("connector", String(40), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("person_key", String(320), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("error_code", String(80)),
    Column("message", Text),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", TZ, nullable=False),
    Column("last_failed_at", TZ, nullable=False),
    Column("resolved_at", TZ),
    Column("run_id", String(40), nullable=False),
    Index("ix_dead_letters_open", "connector", "record_id", "resolved_at"),
)

#: Every lifecycle transition, append-only: re-entries stay (recycled, then MQL again is a
#: second MQL row). The funnel report (conversion, time in stage) reads from here.
stage_history = Table(
    "stage_history", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("person_key", String(320), nullable=False),
    Column("from_stage", String(20)),
    Column("to_stage", String(20), nullable=False),
    Column("at", TZ, nullable=False),
    #: what moved the stage: scoring, hand_raise, recycle, disqualify, crm (set by a person
    #: in a CRM), rollback, merge
    Column("cause", String(40), nullable=False),
    Column("model_version", String(80), nullable=False),
    Column("run_id", String(40), nullable=False),
    Column("detail", Text),
    Index("ix_stage_history_person", "person_key", "id"),
    Index("ix_stage_history_at", "at"),
)

#: Model publications and rollbacks, append-only; the newest row names the active model.
model_publications = Table(
    "model_publications", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", TZ, nullable=False),
    #: publish | rollback
    Column("action", String(20), nullable=False),
    Column("version", String(80), nullable=False),
    Column("previous_version", String(80)),
    #: the model file's text as published, so a rollback needs no file on disk
    Column("content", Text, nullable=False),
    Column("note", Text),
)

#: Per person and shared field, the value both CRMs agreed on after the last sync: the base
#: that tells which side changed since (field policies, `latest`).
shared_values = Table(
    "shared_values", metadata,
    Column("person_key", String(320), primary_key=True),
    Column("field", String(40), primary_key=True),
    Column("value", Text),
    Column("synced_at", TZ, nullable=False),
)

#: Who holds each run lock (syncer/store/locks.py), PostgreSQL only: the advisory lock
#: itself lives in the server; this row says who took it (so a second start can name them)
#: and carries the fencing token every fenced write of the holder checks.
run_locks = Table(
    "run_locks", metadata,
    Column("lock_key", BigInteger, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("backend_pid", Integer, nullable=False),
    Column("run_id", String(40), nullable=False),
    Column("since", TZ, nullable=False),
)
