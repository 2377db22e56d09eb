"""The audit log: append-only, hash-chained, queryable.

Every row carries `prev_hash` (the hash of the row before it) and `row_hash`, the sha256 of
the row's canonical form together with `prev_hash` (syncer/store/audit_chain.py). Row ids
are handed out by the chain itself (one more than the head), so they are gap-free. `verify`
therefore finds an edited row (its content no longer matches its hash), a removed row (a
gap in the ids, or the head pointing past the last row) and an inserted one (a row that
does not link to its predecessor, or that lies beyond the recorded head).

A row's reasons are stored once per distinct list in audit_reasons and the row cites them
by `reasons_id` (syncer/store/audit_reasons.py); rows read back through this module carry
the list again, as `reasons`, exactly as before schema 9.

Appends are serialised by locking the one `audit_chain` row: SELECT ... FOR UPDATE on
PostgreSQL, and on SQLite an UPDATE of that row first, which takes the database's single
write lock before the head is read. Several daemons sharing one PostgreSQL therefore still
build one chain, and the reasons an append stores cannot race an archive removing them.

The chain proves the log is complete and unedited against anyone who does not also
recompute every hash after the change; keep the chain head that `syncer audit verify`
prints (or the archive manifests) somewhere else to anchor it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring

from sqlalchemy import Connection, Engine, and_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from syncer.domain.failures import RunFailed
from syncer.store import tables as t
from syncer.store.audit_chain import (
    CHAIN,
    GENESIS,
    HASHED_FIELDS,
    MAX_PROBLEMS,
    ChainChecker,
    ChainHead,
    ChainProblem,
    VerifyReport,
    as_utc,
    canonical_form,
    id_of,
    row_hash,
    time_of,
)
from syncer.store.audit_refs import KnownIds, audit_names, audit_stamps, audit_subjects
from syncer.store.audit_storage import (
    STORED_COLUMNS,
    AuditRecord,
    Normalised,
    ReasonTexts,
    RowReader,
    chained,
    cite_runs,
    insert_postgres,
    insert_sqlite,
    runs_of,
)
from syncer.store.kept import A_FEW_CHUNKS

__all__ = ["CHAIN", "GENESIS", "HASHED_FIELDS", "MAX_PROBLEMS", "AuditError", "AuditFilter",
           "AuditLog", "ChainChecker", "ChainHead", "ChainProblem", "RowReader", "VerifyReport",
           "as_utc", "canonical_form", "row_hash"]

_BATCH = 1000


class AuditError(RunFailed, RuntimeError):
    """An audit operation that cannot proceed; the message says what to do."""


def _normalised(row: Mapping[str, object], _reasons: object = None) -> Normalised:
    """The row as the database will hand it back: text as str, time as aware UTC (its id
    and prev_hash set by the append; its reasons go to the hash as their stored text).
    Hashing exactly that keeps verify independent of types."""
    old, new, error = row.get("old_value"), row.get("new_value"), row.get("error")
    return {"id": 0, "at": time_of(row), "run_id": str(row["run_id"]),
            "connector": str(row["connector"]), "record_id": str(row["record_id"]),
            "person_key": str(row["person_key"]), "field": str(row["field"]),
            "outcome": str(row["outcome"]), "model_version": str(row["model_version"]),
            "old_value": None if old is None else str(old),
            "new_value": None if new is None else str(new),
            "error": None if error is None else str(error), "prev_hash": ""}


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _stored_row_hash(record: Normalised, prev_hash: str, reasons_text: str,
                     at_text: str | None = None) -> str:
    """`row_hash(record, prev_hash, reasons_text)` of a `_normalised` row (the form the
    append's `audit_storage.chained` writes in parts, per run of rows), with the
    canonical form written out key by key (sorted, compact, the strings through the same
    encoder json.dumps(ensure_ascii=False) uses) instead of through json.dumps: the same
    bytes at a fraction of the cost. verify recomputes with canonical_form, so a
    difference would show as a broken chain in every test that appends and verifies.
    `at_text`: the time already as its JSON text (the rows of a push share one time)."""
    if at_text is None:
        at_text = encode_basestring(record["at"].isoformat(timespec="microseconds"))
    text = "".join((
        '{"at":', at_text,
        ',"connector":', encode_basestring(record["connector"]),
        ',"error":', _json_text(record["error"]),
        ',"field":', encode_basestring(record["field"]),
        ',"id":', str(record["id"]),
        ',"model_version":', encode_basestring(record["model_version"]),
        ',"new_value":', _json_text(record["new_value"]),
        ',"old_value":', _json_text(record["old_value"]),
        ',"outcome":', encode_basestring(record["outcome"]),
        ',"person_key":', encode_basestring(record["person_key"]),
        ',"reasons":', reasons_text,
        ',"record_id":', encode_basestring(record["record_id"]),
        ',"run_id":', encode_basestring(record["run_id"]), "}"))
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True)
class AuditFilter:
    """Which rows a query or export returns; every given criterion must hold.

    `person` is an email (any case) or a CRM record id, which stands for every row of the
    person that record belongs to, in every CRM. `since` is inclusive, `until` exclusive.
    """

    person: str | None = None
    person_key: str | None = None
    record_id: str | None = None
    field: str | None = None
    run_id: str | None = None
    connector: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> str:
        given = {k: v for k, v in self.__dict__.items() if v is not None}
        return ", ".join(f"{k}={v.isoformat() if isinstance(v, datetime) else v}"
                         for k, v in given.items()) or "all rows"


class AuditLog:
    """The audit repository. `append` takes the caller's transaction so audit rows commit
    with the writes they describe; everything else opens its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: ids of what appends cite, found by this process's earlier appends
        self.known = KnownIds()
        #: the canonical text of the reasons lists recent appends were handed, by list
        #: object: a decision's list is cited by its outcome rows in one CRM, then by the
        #: other CRM's in a later append (the writer hands them all one list)
        self.texts = ReasonTexts(A_FEW_CHUNKS)

    # -- the chain -------------------------------------------------------------------------
    @staticmethod
    def ensure_head(connection: Connection) -> None:
        """Create the chain head row if missing (fresh or just-migrated databases)."""
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(dialect.insert(t.audit_chain).values(
            name=CHAIN, last_id=0, head_hash=GENESIS, updated_at=datetime.now(timezone.utc)
        ).on_conflict_do_nothing(index_elements=["name"]))

    @staticmethod
    def lock_head(connection: Connection) -> ChainHead:
        """Take the chain's writer lock for the rest of the transaction; return the head."""
        query = select(t.audit_chain.c.last_id, t.audit_chain.c.head_hash).where(
            t.audit_chain.c.name == CHAIN)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        else:  # a write first: SQLite's write lock, then a read no other writer can change
            connection.execute(update(t.audit_chain).where(t.audit_chain.c.name == CHAIN)
                               .values(last_id=t.audit_chain.c.last_id))
        row = connection.execute(query).one_or_none()
        if row is None:
            AuditLog.ensure_head(connection)
            row = connection.execute(query).one()
        return ChainHead(int(row.last_id), str(row.head_hash))

    def head(self) -> ChainHead:
        """The recorded head: the last row's id and hash (keep it elsewhere as an anchor)."""
        with self.engine.connect() as connection:
            return self._read_head(connection)

    def append(self, connection: Connection, rows: Sequence[Mapping[str, object]]
               ) -> list[int]:
        """Append rows in the caller's transaction, chained after the current head; return
        their ids. Rows name the audit columns except id and the hashes, with `reasons`
        as a list (stored once per distinct list in audit_reasons).

        A list's text is worked out the first time the list is appended and kept for the
        appends after (`texts`), so a list handed over must not change afterwards: a
        caller with other reasons hands a new list. None in syncer changes one (the
        writer's come from Store.reasons_json, recovery's are decoded afresh per read,
        the others are built per row)."""
        if not rows:
            return []
        head = self.lock_head(connection)
        self.known.begin(connection, head.last_id, head.head_hash)
        runs, prepared = runs_of(rows, self.texts)
        interner = cite_runs(connection, runs, prepared, self.known)
        sqlite_rows = connection.dialect.name == "sqlite"
        stored, last = chained(prepared, interner, head, sqlite_rows)
        if sqlite_rows:
            insert_sqlite(connection, stored)
        elif not insert_postgres(connection, stored):
            for start in range(0, len(stored), _BATCH):
                connection.execute(t.audit.insert(), [dict(zip(STORED_COLUMNS, row, strict=True))
                                                      for row in stored[start:start + _BATCH]])
        connection.execute(update(t.audit_chain).where(t.audit_chain.c.name == CHAIN).values(
            last_id=last.last_id, head_hash=last.head_hash,
            updated_at=datetime.now(timezone.utc)))
        self.known.end(connection, last.last_id, last.head_hash)
        return list(range(head.last_id + 1, last.last_id + 1))

    @staticmethod
    def anchor(connection: Connection) -> tuple[int, str]:
        """(last archived id, its hash): where the rows still in the database start."""
        row = connection.execute(select(t.audit_archives.c.last_id, t.audit_archives.c.cut_hash)
                                 .order_by(t.audit_archives.c.last_id.desc()).limit(1)
                                 ).one_or_none()
        return (int(row.last_id), str(row.cut_hash)) if row else (0, GENESIS)

    def verify(self, *, checker: ChainChecker | None = None,
               report: VerifyReport | None = None) -> VerifyReport:
        """Walk every row still in the database from the last archive cut (or the start)
        and compare the end with the recorded head. Reads in batches: any size works, and
        rows appended while it runs are walked too (the head is read after the rows)."""
        report = report or VerifyReport()
        with self.engine.connect() as connection:
            after_id, prev = self.anchor(connection)
            report.anchor_id = after_id
            checker = checker or ChainChecker(report, after_id, prev)
            seen = after_id
            for row in self.ordered(connection, true()):
                checker.feed(row)
                seen = id_of(row)
            head = self._read_head(connection)
            for _ in range(100):  # appends that committed after the walk passed them
                if head.last_id <= seen:
                    break
                more = list(self.ordered(connection, t.audit.c.id > seen))
                if not more:
                    break
                for row in more:
                    checker.feed(row)
                    seen = id_of(row)
                head = self._read_head(connection)
        checker.finish(head)
        return report

    @staticmethod
    def _read_head(connection: Connection) -> ChainHead:
        row = connection.execute(select(t.audit_chain).where(
            t.audit_chain.c.name == CHAIN)).one_or_none()
        return ChainHead(int(row.last_id), str(row.head_hash)) if row else ChainHead(0, GENESIS)

    def ordered(self, connection: Connection, condition: ColumnElement[bool]
                ) -> Iterator[AuditRecord]:
        """Rows matching `condition` in id order, fetched in keyset batches."""
        reader = RowReader(connection, self.anchor(connection))
        after = None
        while True:
            query = select(t.audit).where(condition).order_by(t.audit.c.id).limit(_BATCH)
            if after is not None:
                query = query.where(t.audit.c.id > after)
            batch = connection.execute(query).all()
            yield from reader.read(batch)
            if len(batch) < _BATCH:
                return
            after = batch[-1].id

    # -- queries -----------------------------------------------------------------------------
    def _person_keys(self, connection: Connection, person: str) -> list[str]:
        """An email is its own person key; a record id stands for its person's key."""
        value = person.strip()
        if "@" in value:
            return [value.lower()]
        keys = set(connection.execute(select(t.records.c.person_key).where(
            t.records.c.record_id == value)).scalars())
        keys |= set(connection.execute(select(audit_subjects.c.person_key).where(
            audit_subjects.c.record_id == value)).scalars())
        return sorted(keys | {value})

    def condition(self, connection: Connection, where: AuditFilter) -> ColumnElement[bool]:
        """The filter over the stored rows: a person, record, run or time finds its
        subjects or stamps first (small tables), then the rows through the row's own
        index on them; a connector, field or outcome is one name id."""
        c, subjects, stamps = t.audit.c, audit_subjects.c, audit_stamps.c
        parts: list[ColumnElement[bool]] = []
        if where.person is not None:
            parts.append(c.subject_id.in_(select(subjects.id).where(
                subjects.person_key.in_(self._person_keys(connection, where.person)))))
        for column, value in ((subjects.person_key, where.person_key),
                              (subjects.record_id, where.record_id)):
            if value is not None:
                parts.append(c.subject_id.in_(select(subjects.id).where(column == value)))
        for column, value in ((c.field_id, where.field), (c.connector_id, where.connector),
                              (c.outcome_id, where.outcome)):
            if value is not None:
                parts.append(column == select(audit_names.c.id).where(
                    audit_names.c.name == value).scalar_subquery())
        times: list[ColumnElement[bool]] = []
        if where.run_id is not None:
            times.append(stamps.run_id == where.run_id)
        if where.since is not None:
            times.append(stamps.at >= as_utc(where.since))
        if where.until is not None:
            times.append(stamps.at < as_utc(where.until))
        if times:
            parts.append(c.stamp_id.in_(select(stamps.id).where(*times)))
        return and_(true(), *parts)

    def iter_rows(self, where: AuditFilter = AuditFilter()) -> Iterator[AuditRecord]:
        """Matching rows in id order, streamed in batches (for exports of any size)."""
        with self.engine.connect() as connection:
            yield from self.ordered(connection, self.condition(connection, where))

    def rows(self, where: AuditFilter = AuditFilter(), limit: int | None = None
             ) -> list[AuditRecord]:
        """Matching rows in id order; with `limit`, the newest `limit` of them."""
        with self.engine.connect() as connection:
            query = select(t.audit).where(self.condition(connection, where))
            reader = RowReader(connection, self.anchor(connection))
            if limit is not None:
                newest = connection.execute(query.order_by(t.audit.c.id.desc()).limit(limit))
                return sorted(reader.read(newest.all()), key=id_of)
            found = connection.execute(query.order_by(t.audit.c.id)).all()
            return reader.read(found)
