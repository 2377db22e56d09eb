"""The audit log: append-only, hash-chained, queryable.

Every row carries `prev_hash` (the hash of the row before it) and `row_hash`, the sha256 of
the row's canonical form together with `prev_hash`. Row ids are handed out by the chain
itself (one more than the head), so they are gap-free. `verify` therefore finds an edited
row (its content no longer matches its hash), a removed row (a gap in the ids, or the head
pointing past the last row) and an inserted one (a row that does not link to its
predecessor, or that lies beyond the recorded head).

Appends are serialised by locking the one `audit_chain` row: SELECT ... FOR UPDATE on
PostgreSQL, and on SQLite an UPDATE of that row first, which takes the database's single
write lock before the head is read. Several daemons sharing one PostgreSQL therefore still
build one chain.

The chain proves the log is complete and unedited against anyone who does not also
recompute every hash after the change; keep the chain head that `syncer audit verify`
prints (or the archive manifests) somewhere else to anchor it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from syncer.domain.failures import RunFailed
from syncer.store import tables as t

#: prev_hash of the very first row.
GENESIS = "0" * 64
#: Name of the one row in audit_chain (room for more chains later).
CHAIN = "audit"
#: The columns a row's hash covers, in the canonical form's order.
HASHED_FIELDS: tuple[str, ...] = (
    "id", "at", "run_id", "connector", "record_id", "person_key", "field", "old_value",
    "new_value", "outcome", "error", "reasons", "model_version")
_TEXT_FIELDS = ("run_id", "connector", "record_id", "person_key", "field", "outcome",
                "model_version")
_OPTIONAL_TEXT_FIELDS = ("old_value", "new_value", "error")
_BATCH = 1000
#: verify stops collecting problems after this many (the first one is what matters).
MAX_PROBLEMS = 100


class AuditError(RunFailed, RuntimeError):
    """An audit operation that cannot proceed; the message says what to do."""


def as_utc(value: datetime) -> datetime:
    """Aware UTC; SQLite hands back naive datetimes that are UTC by construction."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
        value.astimezone(timezone.utc)


def canonical_form(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers: its HASHED_FIELDS as sorted, compact JSON, with the
    time as UTC ISO-8601 to the microsecond, so SQLite and PostgreSQL agree."""
    data = {name: row.get(name) for name in HASHED_FIELDS}
    data["id"] = int(row["id"])
    data["at"] = as_utc(row["at"]).isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def row_hash(row: Mapping[str, Any], prev_hash: str) -> str:
    """sha256 over the previous row's hash and this row's canonical form."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_form(row))
    return digest.hexdigest()


def _normalised(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as the database will hand it back: text as str, time as aware UTC, reasons
    through a JSON round trip. Hashing exactly that keeps verify independent of types."""
    out: dict[str, Any] = {name: str(row[name]) for name in _TEXT_FIELDS}
    for name in _OPTIONAL_TEXT_FIELDS:
        value = row.get(name)
        out[name] = None if value is None else str(value)
    out["at"] = as_utc(row["at"])
    out["reasons"] = json.loads(json.dumps(row.get("reasons") or [], allow_nan=False))
    return out


@dataclass(frozen=True)
class ChainHead:
    last_id: int
    head_hash: str


@dataclass(frozen=True)
class ChainProblem:
    """Where the chain breaks and how: edited, deleted, inserted, relinked or head."""

    row_id: int
    kind: str
    message: str


@dataclass
class VerifyReport:
    """What `verify` found. `ok` only when every row and the head check out."""

    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    head_hash: str = GENESIS
    anchor_id: int = 0
    archives_checked: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_break(self) -> ChainProblem | None:
        return self.problems[0] if self.problems else None


class ChainChecker:
    """Walks rows in id order from an anchor (the genesis or an archive cut) and records
    every place the chain breaks. Shared by verify and by the archive job."""

    def __init__(self, report: VerifyReport, after_id: int, prev_hash: str) -> None:
        self.report = report
        self.next_id = after_id + 1
        self.prev = prev_hash

    def problem(self, row_id: int, kind: str, message: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(ChainProblem(row_id, kind, message))
        else:
            self.report.more_problems += 1

    def feed(self, row: Mapping[str, Any]) -> None:
        row_id = int(row["id"])
        if row_id < self.next_id:
            self.problem(row_id, "inserted", f"row {row_id} lies at or before the archive cut "
                          f"(id {self.next_id - 1}); it was inserted afterwards")
        elif row_id > self.next_id:
            missing = (f"row {self.next_id} is" if row_id == self.next_id + 1
                       else f"rows {self.next_id}..{row_id - 1} are")
            self.problem(self.next_id, "deleted", f"{missing} missing (deleted)")
        elif row["prev_hash"] != self.prev:
            self.problem(row_id, "relinked", f"row {row_id} does not link to the row before "
                          "it: that row was rewritten with a new hash, or this row inserted")
        stored = row.get("row_hash")
        if not stored or row_hash(row, str(row.get("prev_hash") or "")) != stored:
            self.problem(row_id, "edited", f"row {row_id}: its content does not match its "
                          "hash (edited after it was written)")
        self.report.checked += 1
        if self.report.first_id is None:
            self.report.first_id = row_id
        self.report.last_id = row_id
        self.prev = str(stored or "")
        self.next_id = max(self.next_id, row_id + 1)

    def finish(self, head: ChainHead) -> None:
        last = self.next_id - 1
        if head.last_id > last:
            self.problem(last + 1, "deleted", f"rows {last + 1}..{head.last_id} at the end "
                          f"are missing (the chain head says the last row is {head.last_id})")
        elif head.last_id < last:
            self.problem(head.last_id + 1, "inserted", f"rows after {head.last_id} (the "
                          "recorded chain head) were not appended by syncer")
        elif head.head_hash != self.prev:
            self.problem(last, "head", f"row {last}'s hash differs from the recorded chain "
                          "head (the last row was rewritten)")
        self.report.head_hash = head.head_hash


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


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping) | {"at": as_utc(row.at)}


class AuditLog:
    """The audit repository. `append` takes the caller's transaction so audit rows commit
    with the writes they describe; everything else opens its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    def append(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append rows in the caller's transaction, chained after the current head; return
        their ids. Rows name the audit columns except id and the hashes."""
        if not rows:
            return []
        head = self.lock_head(connection)
        last_id, previous = head.last_id, head.head_hash
        prepared: list[dict[str, Any]] = []
        for row in rows:
            last_id += 1
            record = _normalised(row) | {"id": last_id, "prev_hash": previous}
            previous = record["row_hash"] = row_hash(record, previous)
            prepared.append(record)
        for start in range(0, len(prepared), _BATCH):
            connection.execute(t.audit.insert(), prepared[start:start + _BATCH])
        connection.execute(update(t.audit_chain).where(t.audit_chain.c.name == CHAIN).values(
            last_id=last_id, head_hash=previous, updated_at=datetime.now(timezone.utc)))
        return [r["id"] for r in prepared]

    @staticmethod
    def seal_unchained(connection: Connection) -> int:
        """Chain rows written before the chain existed (migration to schema 2), in id
        order after the current head; returns how many were sealed."""
        head = AuditLog.lock_head(connection)
        last_id, previous = head.last_id, head.head_hash
        sealed = 0
        seal = update(t.audit).where(t.audit.c.id == bindparam("b_id")).values(
            prev_hash=bindparam("b_prev"), row_hash=bindparam("b_hash"))
        while True:
            batch = connection.execute(select(t.audit).where(t.audit.c.row_hash.is_(None))
                                       .order_by(t.audit.c.id).limit(_BATCH)).all()
            if not batch:
                break
            params = []
            for row in batch:
                record = row_dict(row)
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

    def anchor(self, connection: Connection) -> tuple[int, str]:
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
                seen = int(row["id"])
            head = self._read_head(connection)
            for _ in range(100):  # appends that committed after the walk passed them
                if head.last_id <= seen:
                    break
                more = list(self.ordered(connection, t.audit.c.id > seen))
                if not more:
                    break
                for row in more:
                    checker.feed(row)
                    seen = int(row["id"])
                head = self._read_head(connection)
        checker.finish(head)
        return report

    @staticmethod
    def _read_head(connection: Connection) -> ChainHead:
        row = connection.execute(select(t.audit_chain).where(
            t.audit_chain.c.name == CHAIN)).one_or_none()
        return ChainHead(int(row.last_id), str(row.head_hash)) if row else ChainHead(0, GENESIS)

    def ordered(self, connection: Connection, condition: ColumnElement[bool]
                 ) -> Iterator[dict[str, Any]]:
        """Rows matching `condition` in id order, fetched in keyset batches."""
        after = None
        while True:
            query = select(t.audit).where(condition).order_by(t.audit.c.id).limit(_BATCH)
            if after is not None:
                query = query.where(t.audit.c.id > after)
            batch = connection.execute(query).all()
            for row in batch:
                yield row_dict(row)
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
        keys |= set(connection.execute(select(t.audit.c.person_key).where(
            t.audit.c.record_id == value).distinct()).scalars())
        return sorted(keys | {value})

    def _condition(self, connection: Connection, where: AuditFilter) -> ColumnElement[bool]:
        c = t.audit.c
        parts: list[ColumnElement[bool]] = []
        if where.person is not None:
            parts.append(c.person_key.in_(self._person_keys(connection, where.person)))
        for column, value in ((c.person_key, where.person_key), (c.record_id, where.record_id),
                              (c.field, where.field), (c.run_id, where.run_id),
                              (c.connector, where.connector), (c.outcome, where.outcome)):
            if value is not None:
                parts.append(column == value)
        if where.since is not None:
            parts.append(c.at >= as_utc(where.since))
        if where.until is not None:
            parts.append(c.at < as_utc(where.until))
        return and_(true(), *parts)

    def iter_rows(self, where: AuditFilter = AuditFilter()) -> Iterator[dict[str, Any]]:
        """Matching rows in id order, streamed in batches (for exports of any size)."""
        with self.engine.connect() as connection:
            yield from self.ordered(connection, self._condition(connection, where))

    def rows(self, where: AuditFilter = AuditFilter(), limit: int | None = None
             ) -> list[dict[str, Any]]:
        """Matching rows in id order; with `limit`, the newest `limit` of them."""
        with self.engine.connect() as connection:
            query = select(t.audit).where(self._condition(connection, where))
            if limit is not None:
                newest = query.order_by(t.audit.c.id.desc()).limit(limit)
                return sorted((row_dict(r) for r in connection.execute(newest)),
                              key=lambda r: int(r["id"]))
            return [row_dict(r) for r in connection.execute(query.order_by(t.audit.c.id))]

