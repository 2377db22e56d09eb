"""Migrations of the audit table: sealing rows written before the chain (schema 2) and
moving every row's reasons and model version out to audit_reasons (schema 9).

Both read the table as it was before schema 9 (`legacy_audit`: the reasons list in each
row, the time and the hashes as text), since that is what they find.

Schema 9 keeps every hash as it was. A row's hash covers its canonical form with the
reasons list in it, and the reasons read back from audit_reasons are the same list, so the
rows still in the database, the archive files and the manifests' cut hashes (which may be
anchored elsewhere) all verify unchanged: nothing is re-sealed. What changes is storage
only: the reasons are stored once per distinct list, and on SQLite the time becomes integer
microseconds and the hashes raw bytes (syncer/store/column_types.py).

On SQLite, dropping the reasons column rewrites every row in place, which leaves the
table's pages mostly empty, and new rows are appended after them rather than into them:
so a SQLite state that schema 9 just compacted is VACUUMed once, after the migration's
transaction (`reclaim_space` in syncer/store/migrations.py; it needs free disk space of
about the compacted size, and a few minutes for a state of gigabytes).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    inspect,
    select,
    text,
    update,
)

from syncer.store import tables as t
from syncer.store.audit import AuditLog
from syncer.store.audit_chain import CHAIN, as_utc, row_hash
from syncer.store.audit_reasons import ReasonsInterner, audit_reasons, canonical_reasons
from syncer.store.column_types import to_micros

_BATCH = 5_000
#: the schema that moved the reasons out
COMPACTED = 9

#: The audit table of schemas 1 to 8, as these migrations find it.
legacy_audit = Table(
    "audit", MetaData(),
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(40), nullable=False),
    Column("connector", String(40), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("person_key", String(320), nullable=False),
    Column("field", String(80), nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("outcome", String(20), nullable=False),
    Column("error", Text),
    Column("reasons", JSON, nullable=False),
    Column("model_version", String(80), nullable=False),
    Column("prev_hash", String(64)),
    Column("row_hash", String(64)),
)

#: The indexes schema 2 gave that table (schema 18 replaces them), by name.
LEGACY_INDEXES = {
    "ix_audit_person": "CREATE INDEX ix_audit_person ON audit (person_key)",
    "ix_audit_run": "CREATE INDEX ix_audit_run ON audit (run_id)",
    "ix_audit_at": "CREATE INDEX ix_audit_at ON audit (at)",
    "ix_audit_record": "CREATE INDEX ix_audit_record ON audit (record_id)",
}


def seal_unchained(connection: Connection) -> int:
    """Schema 2: chain rows written before the chain existed, in id order after the
    current head; returns how many were sealed."""
    audit = legacy_audit
    head = AuditLog.lock_head(connection)
    last_id, previous = head.last_id, head.head_hash
    sealed = 0
    seal = update(audit).where(audit.c.id == bindparam("b_id")).values(
        prev_hash=bindparam("b_prev"), row_hash=bindparam("b_hash"))
    while True:
        batch = connection.execute(select(audit).where(audit.c.row_hash.is_(None))
                                   .order_by(audit.c.id).limit(_BATCH)).all()
        if not batch:
            break
        params = []
        for row in batch:
            record = dict(row._mapping) | {"at": as_utc(row.at)}
            current = row_hash(record, previous)
            params.append({"b_id": row.id, "b_prev": previous, "b_hash": current})
            previous, last_id = current, int(row.id)
        connection.execute(seal, params)
        sealed += len(batch)
    if sealed:
        connection.execute(update(t.audit_chain).where(t.audit_chain.c.name == CHAIN)
                           .values(last_id=last_id, head_hash=previous,
                                   updated_at=datetime.now(timezone.utc)))
    return sealed


def compact_audit(connection: Connection) -> None:
    """Schema 9: reasons and model version stored once (audit_reasons) and cited by
    `reasons_id`; on SQLite the time as microseconds and the hashes as bytes. Hashes
    unchanged (module doc)."""
    audit_reasons.create(connection, checkfirst=True)
    present = {c["name"] for c in inspect(connection).get_columns("audit")}
    sqlite = connection.dialect.name == "sqlite"
    if "reasons_id" not in present:
        kind = "INTEGER" if sqlite else "BIGINT"
        connection.execute(text(f"ALTER TABLE audit ADD COLUMN reasons_id {kind}"))
    if "reasons" in present:
        _move_reasons(connection, sqlite)
        connection.execute(text("ALTER TABLE audit DROP COLUMN reasons"))
        connection.execute(text("ALTER TABLE audit DROP COLUMN model_version"))


def _move_reasons(connection: Connection, sqlite: bool) -> None:
    """Every row's list and model version into audit_reasons (each distinct pair once), in
    id batches; on SQLite the hex hashes become bytes and the time microseconds in the
    same pass (the time as the hash saw it: read through the old column type, as UTC)."""
    audit = legacy_audit
    interner = ReasonsInterner(connection)
    assign = text("UPDATE audit SET reasons_id = :r, prev_hash = :p, row_hash = :h, at = :a "
                  "WHERE id = :i" if sqlite else "UPDATE audit SET reasons_id = :r WHERE id = :i")
    after = 0
    while True:
        batch = connection.execute(
            select(audit.c.id, audit.c.at, audit.c.reasons, audit.c.model_version,
                   audit.c.prev_hash, audit.c.row_hash)
            .where(audit.c.id > after).order_by(audit.c.id).limit(_BATCH)).all()
        if not batch:
            return
        ids = interner.ids([(str(row.model_version), canonical_reasons(row.reasons))
                            for row in batch])
        params = [{"r": reasons_id, "i": row.id} for row, reasons_id in
                  zip(batch, ids, strict=True)]
        if sqlite:
            for param, row in zip(params, batch, strict=True):
                param |= {"p": _raw(row.prev_hash), "h": _raw(row.row_hash),
                          "a": to_micros(as_utc(row.at))}
        connection.execute(assign, params)
        if len(interner.known) > 50_000:  # lists seen long ago: found again by hash
            interner.known.clear()
        after = int(batch[-1].id)


def _raw(value: str | None) -> bytes | str | None:
    """A hex hash as its bytes (anything else as it is: verify will flag it)."""
    try:
        return bytes.fromhex(value) if value is not None and len(value) == 64 else value
    except ValueError:
        return value
