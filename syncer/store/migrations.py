"""Schema migrations.

A fresh database gets the current schema (tables.py) in one step and is stamped with the
latest version. A database created by an older syncer is brought forward by applying, in
order, each step in MIGRATIONS newer than its stamp. Adding a column therefore means: change
tables.py AND append a step that alters existing databases the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, Table, inspect, select, text
from sqlalchemy.exc import OperationalError

from syncer.domain.failures import Unreachable
from syncer.store import (
    accounts,
    echo,
    full_pulls,
    inbound_events,
    intents,
    sweep,
    tables,
    undecided,
)
from syncer.store.audit import AuditLog
from syncer.store.audit_legacy import COMPACTED, LEGACY_INDEXES, compact_audit, seal_unchained
from syncer.store.audit_migration import REFERENCED, cite_audit
from syncer.store.audit_refs import seed_names
from syncer.store.bulk_jobs import bulk_query_jobs
from syncer.store.compact_state import PACKED, pack_tables
from syncer.store.intents_legacy import move_open_intents
from syncer.store.locks import migration_lock
from syncer.store.pg_locks import lock_migrations
from syncer.store.tables import metadata, schema_version
from syncer.store.web_users import web_users

log = logging.getLogger(__name__)


def _add_columns(connection: Connection, table: Table, names: Sequence[str]) -> None:
    """ALTER TABLE ... ADD COLUMN for each of `names` the table lacks (as in tables.py)."""
    present = {c["name"] for c in inspect(connection).get_columns(table.name)}
    for name in names:
        if name not in present:
            column = table.c[name]
            kind = column.type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))


def _audit_chain_and_run_errors(connection: Connection) -> None:
    """Schema 2: hash-chained audit rows (existing rows are sealed into the chain now),
    the chain head and archive manifest tables, run errors, and query indexes."""
    _add_columns(connection, tables.audit, ("prev_hash", "row_hash"))
    _add_columns(connection, tables.runs, ("error",))
    tables.audit_chain.create(connection, checkfirst=True)
    tables.audit_archives.create(connection, checkfirst=True)
    existing = {ix["name"] for name in ("audit", "runs")
                for ix in inspect(connection).get_indexes(name)}
    for name, statement in LEGACY_INDEXES.items():  # the audit table as it was then
        if name not in existing:
            connection.execute(text(statement))
    for index in tables.runs.indexes:
        if index.name not in existing:
            index.create(connection)
    AuditLog.ensure_head(connection)
    seal_unchained(connection)


def _routing_dead_letters_manual_edits(connection: Connection) -> None:
    """Schema 3: owner assignments (routing, speed to lead), dead letters, and the origin
    of written values (a person's hand edit that syncer respects)."""
    tables.assignments.create(connection, checkfirst=True)
    tables.dead_letters.create(connection, checkfirst=True)
    present = {c["name"] for c in inspect(connection).get_columns("written")}
    if "origin" not in present:
        connection.execute(text(
            "ALTER TABLE written ADD COLUMN origin VARCHAR(10) NOT NULL DEFAULT 'syncer'"))


def _identity_history_models(connection: Connection) -> None:
    """Schema 4: identity by ids (record email, successor, duplicate), named scores on
    decisions, stage history, model publications, shared field values."""
    _add_columns(connection, tables.records,
                 ("email", "successor_id", "retired_cause", "duplicate_of"))
    _add_columns(connection, tables.decisions, ("scores",))
    # Until now a record's person key was its normalized email: that is its email.
    connection.execute(text("UPDATE records SET email = person_key WHERE email IS NULL "
                            "AND person_key NOT LIKE 'record:%'"))
    existing = {ix["name"] for ix in inspect(connection).get_indexes("records")}
    for index in tables.records.indexes:
        if index.name not in existing:
            index.create(connection)
    for table in (tables.stage_history, tables.model_publications, tables.shared_values):
        table.create(connection, checkfirst=True)


def _run_locks(connection: Connection) -> None:
    """Schema 5: who holds each run lock, with its fencing token (PostgreSQL uses it)."""
    tables.run_locks.create(connection, checkfirst=True)


def _echo_windows_and_sweeps(connection: Connection) -> None:
    """Schema 12: the CRM time ranges of syncer's own writes, and where each connector's
    reconciliation sweep stands."""
    echo.echo_windows.create(connection, checkfirst=True)
    sweep.sweeps.create(connection, checkfirst=True)


def _successor_index(connection: Connection) -> None:
    """Schema 22: records by (connector, successor id), retired records only."""
    for index in tables.records.indexes:
        if index.name == "ix_records_successor":
            index.create(connection, checkfirst=True)


#: (version, description, step), in version order. Version 1 is the baseline created by
#: create_all. Numbers are reserved per piece of work, so a later number may land first.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "baseline: records, activities, decisions, written, audit, runs, cursors, counters",
     lambda connection: None),
    (2, "audit hash chain, chain head, archive manifests, run errors, audit indexes",
     _audit_chain_and_run_errors),
    (3, "owner assignments, dead letters, origin of written values",
     _routing_dead_letters_manual_edits),
    (4, "record email, successor and duplicate; named scores; stage history; model "
        "publications; shared field values", _identity_history_models),
    (5, "run lock holders and fencing tokens", _run_locks),
    (6, "reconciled runs; indexes of open intents and run status", intents.create_schema),
    (7, "web admin accounts", lambda connection: web_users.create(connection, checkfirst=True)),
    (8, "open bulk query jobs (closed by the next run when a run is killed)",
     lambda connection: bulk_query_jobs.create(connection, checkfirst=True)),
    (9, "compact audit: reasons and model version stored once per distinct pair "
        "(audit_reasons); on SQLite times as microseconds and hashes as bytes; every hash "
        "unchanged", compact_audit),
    (10, "inbound events (webhooks, list imports) and request signatures",
     inbound_events.create_schema),
    (12, "echo windows of syncer's own writes; reconciliation sweep positions",
     _echo_windows_and_sweeps),
    (16, "compact state on SQLite: records', activities' and decisions' JSON packed, their "
         "times as microseconds, written without rowid; PostgreSQL unchanged", pack_tables),
    (17, "accounts: company records, people's companies and buying roles, company "
         "decisions (issue 20)", accounts.create_schema),
    (18, "audit rows cite their run and time, record and person, names and long values "
         "(stored once each); reasons packed on SQLite; every hash unchanged", cite_audit),
    (19, "unfinished full pulls: the position after the last committed page, so a killed "
         "full sync resumes there", full_pulls.create_schema),
    (20, "echo windows of syncer's own writes to accounts (companies, Accounts)",
     echo.create_account_windows),
    (21, "unfinished full pulls also say where their activities stand (window, position "
         "after the last committed page, done), so a killed full sync's activities resume",
     full_pulls.add_activity_columns),
    (22, "an index of retired records by their successor (identity read it by scanning "
         "every record of a connector, once per page)", _successor_index),
    (23, "unfinished full syncs also say how far their deciding got (the last person key "
         "decided with every write sent), so a full sync killed while deciding resumes",
     full_pulls.create_decided_schema),
    (24, "write-ahead intents in a table of their own (one row per batch, gone with its "
         "outcomes) instead of an audit row per field; open ones carried over",
     move_open_intents),
    (25, "people and account records pulled and not yet decided, noted with each page so "
         "a run killed before deciding them leaves them to the next run",
     undecided.create_schema),
]
LATEST = max(number for number, _description, _step in MIGRATIONS)


class SchemaTooNew(Unreachable, RuntimeError):
    """The database was migrated by a newer syncer; running an older one could corrupt it.
    The command line exits 3 on it."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"the state database is at schema version {version}, this syncer knows up to "
            f"{LATEST}: upgrade syncer (or point it at another state database)")
        self.version = version


def current_version(connection: Connection) -> int | None:
    if not inspect(connection).has_table("schema_version"):
        return None
    return connection.execute(
        select(schema_version.c.version).order_by(schema_version.c.version.desc()).limit(1)
    ).scalar()


def migrate(engine: Engine) -> int:
    """Bring the schema to LATEST; return the version it is at. Safe to call every start,
    and from several processes at once: migrations run under a lock (a transaction advisory
    lock on PostgreSQL, a file lock beside a SQLite file), so the second process waits and
    then finds the schema up to date. Raises SchemaTooNew for a database a newer syncer
    migrated."""
    with migration_lock(engine):
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                lock_migrations(connection)
            found = current_version(connection)
            version = _migrate(connection, datetime.now(timezone.utc))
        reclaim_space(engine, found)
        return version


#: Steps that rewrite whole tables (schema 9 compacts the audit, 16 packs the rest, 18
#: makes the audit rows cite): on
#: SQLite they leave mostly empty pages that appends do not reuse.
REWRITING_STEPS = (COMPACTED, PACKED, REFERENCED)


def reclaim_space(engine: Engine, migrated_from: int | None) -> None:
    """VACUUM a SQLite state once after a migration that ran a table-rewriting step,
    giving the emptied pages back to the file system (it needs free disk space of about
    the compacted size). Best effort: a state another process is reading at that moment is
    left as it is (its free pages are reused as it grows) and `sqlite3 state.db VACUUM`
    does it later. A fresh state (`migrated_from` None) has nothing to give back."""
    if engine.dialect.name != "sqlite" or migrated_from is None or \
            migrated_from >= max(REWRITING_STEPS):
        return
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM")
    except OperationalError as error:
        log.warning("could not VACUUM the state after compacting it (%s); run "
                    "`sqlite3 <state file> VACUUM` while syncer is stopped to give the "
                    "freed space back", error)

def _migrate(connection: Connection, now: datetime) -> int:
    version = current_version(connection)
    if version is None:
        metadata.create_all(connection)
        connection.execute(schema_version.insert(), [{"version": LATEST, "applied_at": now}])
        AuditLog.ensure_head(connection)
        seed_names(connection)
        return LATEST
    if version > LATEST:
        raise SchemaTooNew(version)
    for number, _description, step in sorted(MIGRATIONS, key=lambda m: m[0]):
        if number > version:
            step(connection)
            connection.execute(schema_version.insert(),
                               [{"version": number, "applied_at": now}])
    return LATEST
