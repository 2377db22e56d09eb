"""The store: every piece of syncer's state, behind one small API.

Keeping all state here (none in process memory) is what lets a run be killed and restarted,
and what lets N replicas share one PostgreSQL later. Writes that belong together happen in
one transaction: `transaction()` hands out a connection for that.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from sqlalchemy import Connection, Engine, Table, bindparam, create_engine, event, select, update
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from syncer.domain.fast_new import new_activity
from syncer.domain.identity import normalize_email
from syncer.domain.types import (
    Activity,
    ActivityType,
    Decision,
    Person,
    Reason,
    Stage,
)
from syncer.store import tables as t
from syncer.store.audit import AuditFilter, AuditLog
from syncer.store.batches import by_source, chunks
from syncer.store.decision_json import (
    ReasonJson,
    card_from_json,
    card_to_json,
    reason_from_json,
    reasons_to_json,
)
from syncer.store.kept import A_FEW_CHUNKS, KeptByIdentity
from syncer.store.location import parse_state_url
from syncer.store.locks import Fence
from syncer.store.migrations import migrate
from syncer.store.runs import RunQueries, utc_or_none
from syncer.store.sqlite_upsert import SqliteUpserts, upsert_statement
from syncer.store.tenant_schema import ensure_schema

#: an activity type by its stored value (ActivityType(value) costs a call per activity)
_ACTIVITY_TYPES = {kind.value: kind for kind in ActivityType}

_PERSON_FIELDS = ("email", "first_name", "last_name", "title", "company", "industry",
                  "employees", "country")


def _stored_fields(person: Person) -> dict[str, object]:
    """A record's person fields as the `fields` JSON column keeps them: the standard ones,
    and `properties` (the mapped extra fields) and `account_id` only when there are any,
    so records pulled before they existed compare equal to a re-read that has none."""
    fields: dict[str, object] = {f: getattr(person, f) for f in _PERSON_FIELDS}
    if person.properties:
        fields["properties"] = dict(person.properties)
    if person.account_id:  # only when set: records stored before accounts compare equal
        fields["account_id"] = person.account_id
    return fields


class WrittenRow(TypedDict):
    """A value syncer wrote (or, origin "manual", a value set by hand it now respects)."""

    connector: str
    record_id: str
    field: str
    value: str | None
    written_at: datetime
    run_id: str
    origin: NotRequired[str]


class Store(RunQueries):
    """Repository over the state database (SQLite file or PostgreSQL URL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.audit_log = AuditLog(engine)
        self._sqlite_upserts = SqliteUpserts()
        #: the fence of the run writing through this store in this thread (see fenced)
        self._fence: ContextVar[Fence | None] = ContextVar(f"fence-{id(self)}", default=None)
        #: one write transaction at a time per store (see transaction)
        self._writing = threading.RLock()
        #: decisions' reasons as stored, by reasons tuple (see reasons_json)
        self._reasons_json: KeptByIdentity[tuple[Reason, ...], list[ReasonJson]] = \
            KeptByIdentity(A_FEW_CHUNKS)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and migrate. A SQLite file's folder is created if needed (commands that
        only read state refuse a missing file first: syncer/store/location.py). Raises
        StateUrlInvalid for a URL that is not one syncer can use."""
        parsed = parse_state_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        ensure_schema(engine)  # a tenant's (or a test's) schema, before migrating into it
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction. Inside `fenced(fence)` it commits only if the fence
        still passes on this connection just before the commit (LostLock otherwise, and
        the transaction is rolled back): every write of a locked run goes through here.

        The threads of one run (syncer/run/lanes.py) take their write transactions one at
        a time: a transaction that reads, then writes what it read (identity resolution
        matching a new record to a person) must not interleave with another thread's.
        SQLite would serialise the writes anyway; PostgreSQL's read committed would not."""
        with self._writing, self.engine.begin() as connection:
            yield connection
            fence = self._fence.get()
            if fence is not None:
                fence.check(connection)

    @contextmanager
    def fenced(self, fence: Fence) -> Iterator[None]:
        """Fence every `transaction()` of this thread (of this store) until the block
        ends: how a run's writes are tied to its run lock (syncer/store/locks.py)."""
        token = self._fence.set(fence)
        try:
            yield
        finally:
            self._fence.reset(token)

    @property
    def fence(self) -> Fence | None:
        """The fence in effect in this thread, if any."""
        return self._fence.get()

    def check_fence(self) -> None:
        """Raise LostLock now if this thread's run lost its lock: before a CRM call that
        no state write precedes (a creation), so a run without its lock calls no CRM."""
        with self.transaction():
            pass

    # -- generic upsert ---------------------------------------------------------------
    def _upsert(self, connection: Connection, table: Table, rows: Sequence[Mapping[str, object]],
                keys: Sequence[str]) -> None:
        if not rows:
            return
        if connection.dialect.name == "sqlite" and self._sqlite_upserts.upsert(
                connection, table, rows, keys):
            return
        # One statement executed for many rows: compiled once and cached, where a VALUES
        # list per call would be compiled anew every time (most of a large sync's CPU).
        statement = upsert_statement(connection.dialect.name, table, keys, rows[0])
        for chunk in chunks(rows, 2000):
            connection.execute(statement, list(chunk))

    # -- records and activities -----------------------------------------------------------
    def save_records(self, connection: Connection, people: Sequence[Person],
                     keys: Sequence[str], pulled_at: datetime) -> None:
        rows = [{
            "connector": p.source, "record_id": p.record_id, "object_type": p.object_type,
            "person_key": key, "email": normalize_email(p.email),
            "fields": _stored_fields(p),
            "crm_values": dict(p.crm_values), "updated_at": p.updated_at, "pulled_at": pulled_at,
        } for p, key in zip(people, keys, strict=True)]
        self._upsert(connection, t.records, rows, ("connector", "record_id"))

    def save_activities(self, connection: Connection, activities: Sequence[Activity]) -> None:
        rows = [{
            "connector": a.source, "source_id": a.source_id, "record_id": a.record_id,
            "type": a.type.value, "occurred_at": a.occurred_at, "attributes": dict(a.attributes),
        } for a in activities]
        self._upsert(connection, t.activities, rows, ("connector", "source_id"))

    def person_keys(self, connectors: Iterable[str] | None = None) -> list[str]:
        """Every person key with a record in one of `connectors` (all when None), sorted."""
        query = select(t.records.c.person_key).distinct()
        if connectors is not None:
            query = query.where(t.records.c.connector.in_(list(connectors)))
        with self.engine.connect() as connection:
            return sorted(connection.execute(query).scalars())

    def unchanged(self, connector: str, people: Sequence[Person]) -> set[str]:
        """Ids of these records whose stored copy already holds the same person fields and
        CRM values: re-reads (cursor overlap, or the echo of syncer's own writes, which bump
        the CRM's modification time) that change nothing."""
        by_id = {p.record_id: p for p in people}
        same: set[str] = set()
        with self.engine.connect() as connection:
            for chunk in chunks(list(by_id)):
                for row in connection.execute(select(
                        t.records.c.record_id, t.records.c.fields, t.records.c.crm_values).where(
                        t.records.c.connector == connector,
                        t.records.c.record_id.in_(list(chunk)))):
                    person = by_id[row.record_id]
                    if row.fields == _stored_fields(person) \
                            and row.crm_values == dict(person.crm_values):
                        same.add(row.record_id)
        return same

    def person_keys_of(self, connector: str, record_ids: Sequence[str]) -> set[str]:
        """The person keys of these records of one connector (unknown ids are skipped)."""
        keys: set[str] = set()
        with self.engine.connect() as connection:
            for chunk in chunks(list(record_ids)):
                keys.update(connection.execute(select(t.records.c.person_key).where(
                    t.records.c.connector == connector,
                    t.records.c.record_id.in_(list(chunk)))).scalars())
        return keys

    def person_key_for_email(self, email: str) -> str | None:
        """The person a CRM record with this email belongs to now, else the person first
        known by it (their email may have changed since): what `syncer explain` looks up."""
        cleaned = email.strip().lower()
        with self.engine.connect() as connection:
            return connection.execute(
                select(t.records.c.person_key).where(t.records.c.email == cleaned)
                .order_by(t.records.c.successor_id.is_not(None), t.records.c.person_key)
                .limit(1)).scalar() or connection.execute(
                select(t.records.c.person_key).where(t.records.c.person_key == cleaned)
                .limit(1)).scalar()

    def load_people(self, keys: Sequence[str]
                    ) -> dict[str, tuple[list[Person], list[Activity]]]:
        """Live records and all activities of each person key, records freshest first.

        A retired record (converted lead, merged-away duplicate) is left out of the
        records, which are what syncer writes to, but its activities stay the person's."""
        out: dict[str, tuple[list[Person], list[Activity]]] = {k: ([], []) for k in keys}
        owner: dict[tuple[str, str], str] = {}
        record, activity = t.records.c, t.activities.c
        with self.engine.connect() as connection:
            for chunk in chunks(keys):
                # columns by position, unpacked: a row's attribute look-ups by name cost
                # more than building its Person
                for key, connector, record_id, object_type, updated_at, crm_values, \
                        fields, successor_id in connection.execute(select(
                            record.person_key, record.connector, record.record_id,
                            record.object_type, record.updated_at, record.crm_values,
                            record.fields, record.successor_id).where(
                            record.person_key.in_(list(chunk)))):
                    owner[(connector, record_id)] = key
                    if successor_id is not None:
                        continue
                    out[key][0].append(Person(
                        source=connector, record_id=record_id, object_type=object_type,
                        updated_at=utc_or_none(updated_at), crm_values=crm_values, **fields))
            # connector and record id both: the index's order, so each chunk is an index
            # search (by record id alone it was a scan of every activity, per chunk)
            conditions = [(activity.connector == connector)
                          & activity.record_id.in_(list(record_chunk))
                          for connector, record_ids in by_source(owner).items()
                          for record_chunk in chunks(record_ids)]
            types = _ACTIVITY_TYPES
            for condition in conditions:
                for connector, source_id, record_id, kind, occurred_at, attributes in \
                        connection.execute(select(
                            activity.connector, activity.source_id, activity.record_id,
                            activity.type, activity.occurred_at, activity.attributes
                        ).where(condition)):
                    key = owner.get((connector, record_id))
                    if key is None:
                        continue
                    out[key][1].append(new_activity(
                        connector, source_id, record_id, types[kind],
                        utc_or_none(occurred_at), attributes))  # type: ignore[arg-type]
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        for records, acts in out.values():
            records.sort(key=lambda p: (p.updated_at or epoch, p.source, p.record_id),
                         reverse=True)
            acts.sort(key=lambda a: (a.occurred_at, a.source, a.source_id))
        return out

    # -- cursors and counters ----------------------------------------------------------------
    def cursor(self, connector: str, stream: str) -> datetime | None:
        with self.engine.connect() as connection:
            return utc_or_none(connection.execute(select(t.cursors.c.value).where(
                t.cursors.c.connector == connector, t.cursors.c.stream == stream)).scalar())

    def set_cursor(self, connection: Connection, connector: str, stream: str,
                   value: datetime) -> None:
        self._upsert(connection, t.cursors,
                     [{"connector": connector, "stream": stream, "value": value}],
                     ("connector", "stream"))

    def counter(self, name: str) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(t.counters.c.value).where(t.counters.c.name == name)).scalar()
            return int(value or 0)

    def set_counter(self, connection: Connection, name: str, value: int) -> None:
        self._upsert(connection, t.counters, [{"name": name, "value": value}], ("name",))

    # -- decisions and written values --------------------------------------------------------
    def decisions(self, keys: Sequence[str], *, scores: bool = True) -> dict[str, Decision]:
        """The stored decision of each key that has one. `scores=False` leaves the score
        cards out (Decision.scores is then empty): their ledgers are most of a row, and a
        caller that needs only the stage, owner and reasons (the previous decision in a
        sync) reads about twice as fast without them."""
        found: dict[str, Decision] = {}
        columns = [c for c in t.decisions.c if scores or c.name != "scores"]
        with self.engine.connect() as connection:
            for chunk in chunks(keys):
                for row in connection.execute(
                        select(*columns).where(t.decisions.c.person_key.in_(list(chunk)))):
                    found[row.person_key] = Decision(
                        key=row.person_key, score=row.score, fit_points=row.fit_points,
                        engagement_points=row.engagement_points, fit_grade=row.fit_grade,
                        stage=Stage(row.stage), owner_email=row.owner_email,
                        reasons=tuple(reason_from_json(r) for r in row.reasons),
                        model_version=row.model_version,
                        scores=tuple(card_from_json(c) for c in row.scores or ())
                        if scores else ())
        return found

    def reasons_json(self, reasons: tuple[Reason, ...]) -> list[ReasonJson]:
        """A decision's reasons as its decisions row and its audit rows store them: one
        list per reasons tuple, so a sync converts each decision's reasons once for its
        decisions row and the audit rows of its writes to every CRM (Writer._reasons_of),
        and the audit log encodes that one list once (AuditLog.append keeps its text by
        list object). Safe to keep: a tuple of frozen Reasons cannot change. The list is
        shared, so no caller may change it."""
        if not isinstance(reasons, tuple):  # a caller's own sequence: it could change
            return reasons_to_json(reasons)
        return self._reasons_json.value(reasons, reasons_to_json)

    def save_decisions(self, connection: Connection, decisions: Sequence[Decision],
                       at: datetime) -> None:
        rows = [{
            "person_key": d.key, "stage": d.stage.value, "score": d.score,
            "fit_points": d.fit_points, "engagement_points": d.engagement_points,
            "fit_grade": d.fit_grade, "owner_email": d.owner_email,
            "reasons": self.reasons_json(d.reasons),
            "model_version": d.model_version, "decided_at": at,
            "scores": [card_to_json(c) for c in d.scores] if d.scores else None,
        } for d in decisions]
        self._upsert(connection, t.decisions, rows, ("person_key",))

    def written_values(self, connector: str, record_ids: Sequence[str]
                       ) -> dict[tuple[str, str], str | None]:
        """(record_id, field) -> the value syncer last wrote there."""
        found: dict[tuple[str, str], str | None] = {}
        with self.engine.connect() as connection:
            for chunk in chunks(record_ids):
                for row in connection.execute(select(t.written).where(
                        t.written.c.connector == connector,
                        t.written.c.record_id.in_(list(chunk)))):
                    found[(row.record_id, row.field)] = row.value
        return found

    def upsert_written(self, connection: Connection, rows: Sequence[WrittenRow]) -> None:
        self._upsert(connection, t.written, rows, ("connector", "record_id", "field"))

    def record_write(self, connection: Connection, rows: Sequence[WrittenRow]) -> None:
        """Remember written values and, in the same transaction, update the cached CRM
        values, so the next run diffs against what is now in the CRM."""
        self.upsert_written(connection, rows)
        by_record: dict[tuple[str, str], dict[str, str | None]] = {}
        for row in rows:
            by_record.setdefault((row["connector"], row["record_id"]), {})[row["field"]] = \
                row["value"]
        changed: list[dict[str, object]] = []
        for connector, record_ids in by_source(by_record).items():
            for chunk in chunks(record_ids):
                for record_id, values in connection.execute(select(
                        t.records.c.record_id, t.records.c.crm_values).where(
                        t.records.c.connector == connector,
                        t.records.c.record_id.in_(list(chunk)))):
                    changed.append({"c": connector, "r": record_id, "v": {
                        **values, **by_record[(connector, record_id)]}})
        if changed:
            statement = update(t.records).where(
                t.records.c.connector == bindparam("c"), t.records.c.record_id == bindparam("r")
            ).values(crm_values=bindparam("v"))
            if connection.dialect.name == "sqlite":
                self._sqlite_upserts.execute(connection, "record_write", statement, changed)
            else:
                connection.execute(statement, changed)

    # -- audit (the hash-chained log lives in syncer/store/audit.py) --------------------------
    def append_audit(self, connection: Connection, rows: Sequence[Mapping[str, object]]) -> None:
        """Append audit rows in the caller's transaction, chained after the current head."""
        self.audit_log.append(connection, rows)

    def audit_rows(self, *, person_key: str | None = None, run_id: str | None = None,
                   limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Audit rows in id order; keywords are the AuditFilter fields (person, record_id,
        field, connector, outcome, since, until)."""
        where = AuditFilter(person_key=person_key, run_id=run_id, **filters)
        return self.audit_log.rows(where, limit=limit)

def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
