"""Schema 18: audit rows cite their stamp, subject, names and long values (syncer/store/
audit_refs.py) instead of carrying them as text; on SQLite the reasons lists are packed.

Every hash stays as it was: a row's hash covers its canonical form (syncer/store/
audit_chain.py), built from the text the row reads back as, and that text is the same
before and after. So rows anchored elsewhere, archive files and manifests' cut hashes all
verify unchanged, and nothing is re-sealed.

The audit table is rebuilt: a new table is filled from the old one in id batches (each
batch's stamps, subjects, names and long values interned as an append does), the old table
with its five indexes is dropped, the new one takes its name and gets its three indexes.
On SQLite the emptied pages are given back by the VACUUM after the migration
(`reclaim_space` in syncer/store/migrations.py).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
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
from syncer.store.audit_chain import as_utc
from syncer.store.audit_reasons import audit_reasons
from syncer.store.audit_refs import (
    RefInterner,
    audit_names,
    audit_stamps,
    audit_subjects,
    audit_texts,
    seed_names,
)
from syncer.store.audit_storage import Normalised, cite
from syncer.store.column_types import MicroTime, Sha256Hex

#: the schema version that made the audit rows cite
REFERENCED = 18
_BATCH = 5_000
_NEW = "audit_after18"

#: The audit table of schemas 9 to 17, as schema 18 finds it.
audit_v9 = Table(
    "audit", MetaData(),
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", MicroTime(), nullable=False),
    Column("run_id", String(40), nullable=False),
    Column("connector", String(40), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("person_key", String(320), nullable=False),
    Column("field", String(80), nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("outcome", String(20), nullable=False),
    Column("error", Text),
    Column("prev_hash", Sha256Hex()),
    Column("row_hash", Sha256Hex()),
    Column("reasons_id", BigInteger().with_variant(Integer, "sqlite")),
)
_TEXT = ("run_id", "connector", "record_id", "person_key", "field", "outcome")


def cite_audit(connection: Connection) -> None:
    """Schema 18 (see the module doc). Idempotent: an audit table already in the new form
    is left as it is."""
    for table in (audit_stamps, audit_subjects, audit_names, audit_texts):
        table.create(connection, checkfirst=True)
    seed_names(connection)
    inspector = inspect(connection)
    if "run_id" in {c["name"] for c in inspector.get_columns("audit")}:
        for found in inspector.get_indexes("audit"):
            connection.execute(text(f'DROP INDEX IF EXISTS "{found["name"]}"'))
        new = t.audit.to_metadata(MetaData(), name=_NEW)
        new.indexes.clear()
        new.create(connection)
        _copy(connection, new)
        connection.execute(text("DROP TABLE audit"))
        connection.execute(text(f"ALTER TABLE {_NEW} RENAME TO audit"))
        for index in t.audit.indexes:
            index.create(connection)
    if connection.dialect.name == "sqlite":
        _pack_reasons(connection)


def _copy(connection: Connection, new: Table) -> None:
    """Every row of the old table into `new`, same id and hashes, citing what it said."""
    old = audit_v9
    after = 0
    while True:
        batch = connection.execute(select(old).where(old.c.id > after)
                                   .order_by(old.c.id).limit(_BATCH)).all()
        if not batch:
            return
        records: list[Normalised] = []
        for row in batch:
            text_ = {name: str(row._mapping[name]) for name in _TEXT}
            records.append({
                "id": int(row.id), "at": as_utc(row.at), "run_id": text_["run_id"],
                "connector": text_["connector"], "record_id": text_["record_id"],
                "person_key": text_["person_key"], "field": text_["field"],
                "outcome": text_["outcome"], "model_version": "",
                "old_value": row.old_value, "new_value": row.new_value, "error": row.error,
                "prev_hash": row.prev_hash})
        cited = cite(RefInterner(connection), records)
        for row, ref in zip(batch, cited, strict=True):
            ref["row_hash"], ref["reasons_id"] = row.row_hash, row.reasons_id
        connection.execute(new.insert(), cited)
        after = int(batch[-1].id)


def _pack_reasons(connection: Connection) -> None:
    """The reasons lists still stored as text, packed (PackedText reads both forms)."""
    r = audit_reasons.c
    raw = text("SELECT id, reasons FROM audit_reasons WHERE typeof(reasons) = 'text' "
               "AND id > :after ORDER BY id LIMIT :limit")
    repack = update(audit_reasons).where(r.id == bindparam("b_id")).values(
        reasons=bindparam("b_reasons", type_=audit_reasons.c.reasons.type))
    after = 0
    while True:
        batch = connection.execute(raw, {"after": after, "limit": _BATCH}).all()
        if not batch:
            return
        connection.execute(repack, [{"b_id": i, "b_reasons": str(reasons)}
                                    for i, reasons in batch])
        after = int(batch[-1][0])
