"""How an audit row is stored and read back (schema 18): the row holds references, the code
sees text.

An append hands its rows to `runs_of` (the runs of consecutive rows that share a
decision's time, run, subject, model version and reasons, each worked out once per run),
`cite_runs` (the ids of the stamps, subjects, names, long values and reasons lists they
cite: syncer/store/audit_refs.py, syncer/store/audit_reasons.py) and `chained` (each row
hashed and turned into the tuple its stored row holds); `insert_sqlite` and
`insert_postgres` store the tuples without SQLAlchemy's per-row parameter processing.
`cite` does the same citing for rows of an older schema being migrated. `RowReader` turns
stored rows back into the dicts syncer has always shown, with the reasons and model
version they cite. A row whose cited item is gone reads with empty text there, so its
hash no longer matches and verify names it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from json.encoder import encode_basestring
from operator import is_
from typing import TypedDict

from sqlalchemy import Connection, Row, select

from syncer.store import tables as t
from syncer.store.audit_chain import GENESIS, ChainHead, as_utc, time_of
from syncer.store.audit_reasons import Cited, ReasonsInterner, canonical_reasons, load_reasons
from syncer.store.audit_refs import (
    LONG_VALUE,
    KnownIds,
    RefCache,
    RefInterner,
    StampKey,
    SubjectKey,
)
from syncer.store.column_types import LINK_BYTES
from syncer.store.decision_json import ReasonJson
from syncer.store.kept import KeptByIdentity

#: an audit row as syncer shows it: id, at, run_id, connector, record_id, person_key, field,
#: old_value, new_value, outcome, error, prev_hash, row_hash, model_version, reasons
AuditRecord = dict[str, object]
#: a stored row as read: what `select(audit)` gives
StoredRead = Row[tuple[object, ...]]


class AuditFields(TypedDict):
    """What every audit row says of one field write, however it is held: as appended
    (run/audit_trail.py AuditRow), as hashed (Normalised), as recovery reads an open intent
    (intents.py IntentRow)."""

    run_id: str
    connector: str
    record_id: str
    person_key: str
    field: str
    old_value: str | None
    new_value: str | None
    model_version: str


class Normalised(AuditFields):
    """A row about to be appended, as the database will hand it back (its hash covers
    exactly this, with its reasons' text)."""

    id: int
    at: datetime
    outcome: str
    error: str | None
    prev_hash: str


class StoredRow(TypedDict):
    """The columns of the audit table, as an append stores them."""

    id: int
    stamp_id: int
    subject_id: int
    connector_id: int
    field_id: int
    outcome_id: int
    old_value: str | None
    new_value: str | None
    old_text_id: int | None
    new_text_id: int | None
    error: str | None
    prev_hash: str
    row_hash: str
    reasons_id: int | None


#: what a row reads as whose reasons row is gone (its hash then no longer matches)
_MISSING: tuple[str, list[ReasonJson]] = ("", [])
#: what a row reads as whose stamp or subject is gone
_NO_STAMP = ("", datetime(1970, 1, 1, tzinfo=timezone.utc))
_NO_SUBJECT = ("", "", "")
#: decoded reasons lists a reader keeps (rows of one decision are neighbours, so a small
#: cache decodes each list about once; a bound keeps a verify of millions of rows small)
_CACHE_LIMIT = 20_000

#: the audit columns in the order a StoredTuple holds them
STORED_COLUMNS = ("id", "stamp_id", "subject_id", "connector_id", "field_id", "outcome_id",
                  "old_value", "new_value", "old_text_id", "new_text_id", "error",
                  "prev_hash", "row_hash", "reasons_id")
#: an audit row as an append stores it, its columns in STORED_COLUMNS' order; prev_hash and
#: row_hash as hex text, or on SQLite as bound there (see insert_sqlite)
StoredTuple = tuple[int, int, int, int, int, int, str | None, str | None, int | None,
                    int | None, str | None, str | bytes, str | bytes, int | None]
_SQLITE_INSERT = (f"INSERT INTO audit ({', '.join(STORED_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in STORED_COLUMNS)})")


def insert_sqlite(connection: Connection, stored: Sequence[StoredTuple]) -> None:
    """The rows in one executemany of plain tuples: SQLAlchemy's per-row parameter
    processing cost more than SQLite's insert itself. The hashes must already be as the
    column types bind them: row_hash 32 bytes (Sha256Hex), prev_hash its first LINK_BYTES
    (HashLink; `hash_bytes` of a hash given as text)."""
    connection.exec_driver_sql(_SQLITE_INSERT, stored)


def insert_postgres(connection: Connection, stored: Sequence[StoredTuple]) -> bool:
    """The rows in one COPY FROM STDIN on psycopg 3 (PostgreSQL's bulk load: one statement
    streaming every row, where an executemany sends an INSERT per row); say False on
    another driver, which the caller then inserts by executemany. Every column is an
    integer or text on PostgreSQL (the hashes as hex), so no conversion is needed."""
    driver = connection.connection.driver_connection
    cursor_of = getattr(driver, "cursor", None)
    if cursor_of is None or not hasattr(driver, "pipeline"):  # psycopg 3 has pipeline()
        return False
    with cursor_of() as cursor, cursor.copy(
            f"COPY audit ({', '.join(STORED_COLUMNS)}) FROM STDIN") as copy:
        for row in stored:
            copy.write_row(row)
    return True


def hash_bytes(value: str) -> str | bytes:
    """As Sha256Hex binds a hash on SQLite: 32 bytes, or the text when it is none."""
    try:
        return bytes.fromhex(value) if len(value) == 64 else value
    except ValueError:
        return value


#: what rows of one run share, as text: time (aware UTC), run id, connector, record id,
#: person key, model version, canonical reasons text
RunKey = tuple[datetime, str, str, str, str, str, str]


class RowRun:
    """What consecutive rows of one decision's write share (time, run, connector, record,
    person, model version, reasons): their text, the parts of their canonical form that
    are not the row's own (`head`, `middle`, `tail`: see `chained`) and the ids they
    cite, worked out once per such run of rows instead of per row. `raw`: the objects
    the last row of the run handed over (the writer hands a decision's rows the same
    objects, so the next row is compared by identity first, by its text only if not)."""

    __slots__ = ("connector_id", "head", "key", "middle", "raw", "reasons_id", "stamp_id",
                 "subject_id", "tail")

    def __init__(self, key: RunKey) -> None:
        at, run_id, connector, record_id, person_key, model_version, text = key
        self.key = key
        self.raw: tuple[object, ...] = ()
        at_text = encode_basestring(at.isoformat(timespec="microseconds"))
        # the hash covers the previous row's hash, "\n", then the canonical form
        self.head = f'\n{{"at":{at_text},"connector":{encode_basestring(connector)},"error":'
        self.middle = f',"model_version":{encode_basestring(model_version)},"new_value":'
        self.tail = "".join((
            ',"person_key":', encode_basestring(person_key), ',"reasons":', text,
            ',"record_id":', encode_basestring(record_id),
            ',"run_id":', encode_basestring(run_id), "}")).encode("utf-8")
        self.stamp_id = self.subject_id = self.connector_id = self.reasons_id = 0

    @property
    def stamp(self) -> StampKey:
        return self.key[1], self.key[0]

    @property
    def subject(self) -> SubjectKey:
        return self.key[2], self.key[3], self.key[4]

    @property
    def cited(self) -> Cited:
        return self.key[5], self.key[6]


#: a reasons list's canonical text, kept by list object across appends (AuditLog.texts)
ReasonTexts = KeptByIdentity[object, str]


def run_key(row: Mapping[str, object], texts: ReasonTexts) -> RunKey:
    """The shared part of a row as text, as audit.py's `_normalised` gives it; the reasons
    list's canonical text comes from `texts`, worked out once per list object."""
    return (time_of(row), str(row["run_id"]), str(row["connector"]), str(row["record_id"]),
            str(row["person_key"]), str(row["model_version"]),
            texts.value(row.get("reasons"), canonical_reasons))


#: a row about to be appended: what it shares with its neighbours, then its field,
#: outcome, old and new value and error as text (None stays None)
PreparedRow = tuple[RowRun, str, str, str | None, str | None, str | None]


def runs_of(rows: Sequence[Mapping[str, object]], texts: ReasonTexts
            ) -> tuple[list[RowRun], list[PreparedRow]]:
    """The runs of consecutive rows sharing a decision's time, run, subject, model version
    and reasons, and each row with its own fields as text (what audit.py's `_normalised` gives,
    without a dict per row); the reasons lists' texts through `texts`."""
    runs: list[RowRun] = []
    out: list[PreparedRow] = []
    shared: RowRun | None = None
    for row in rows:
        raw = (row.get("at"), row["run_id"], row["connector"], row["record_id"],
               row["person_key"], row["model_version"], row.get("reasons"))
        if shared is None or not all(map(is_, raw, shared.raw)):
            key = run_key(row, texts)
            if shared is None or key != shared.key:
                shared = RowRun(key)
                runs.append(shared)
            shared.raw = raw
        old, new, error = row.get("old_value"), row.get("new_value"), row.get("error")
        out.append((shared, str(row["field"]), str(row["outcome"]),
                    None if old is None else str(old), None if new is None else str(new),
                    None if error is None else str(error)))
    return runs, out


def cite_runs(connection: Connection, runs: Sequence[RowRun], prepared: Sequence[PreparedRow],
          known: KnownIds) -> RefInterner:
    """Find or store what the rows cite (reasons, stamps, subjects, names, long values),
    starting from the ids `known`; each run of rows gets its ids, the rows' own names and
    texts stay in the interner."""
    reasons_ids = ReasonsInterner(connection, known.reasons, known.learned).ids(
        [run.cited for run in runs])
    interner = RefInterner(connection, known)
    interner.stamp_ids({run.stamp for run in runs})
    interner.subject_ids({run.subject for run in runs})
    interner.name_ids({run.subject[0] for run in runs} | {row[1] for row in prepared}
                      | {row[2] for row in prepared})
    interner.text_ids({value for row in prepared for value in (row[3], row[4])
                       if value is not None and len(value) >= LONG_VALUE})
    names = interner.names
    for run, reasons_id in zip(runs, reasons_ids, strict=True):
        run.stamp_id, run.subject_id = interner.stamps[run.stamp], interner.subjects[run.subject]
        run.connector_id, run.reasons_id = names[run.subject[0]], reasons_id
    return interner


def chained(prepared: Sequence[PreparedRow], interner: RefInterner, head: ChainHead,
             sqlite_rows: bool) -> tuple[list[StoredTuple], ChainHead]:
    """The stored rows (STORED_COLUMNS), chained after `head`, and the new head. A row's
    hash is `row_hash` of its `_normalised` form (syncer/store/audit.py): the canonical
    form is the run's `head`, the row's error, field and id, the run's `middle`, the
    row's values and outcome, the run's `tail` (the keys in sorted order, as audit.py's
    `_stored_row_hash` writes them). On SQLite the hashes are stored as the column types
    would bind them (`insert_sqlite`)."""
    names, texts = interner.names, interner.texts
    sha256, encode = hashlib.sha256, encode_basestring
    last_id, previous = head.last_id, head.head_hash
    link: str | bytes = hash_bytes(previous)[:LINK_BYTES] if sqlite_rows else previous
    stored: list[StoredTuple] = []
    for run, field, outcome, old, new, error in prepared:
        last_id += 1
        text = "".join((
            run.head, "null" if error is None else encode(error), ',"field":', encode(field),
            ',"id":', str(last_id), run.middle, "null" if new is None else encode(new),
            ',"old_value":', "null" if old is None else encode(old),
            ',"outcome":', encode(outcome)))
        digest = sha256(previous.encode("ascii") + text.encode("utf-8"))
        digest.update(run.tail)
        own = digest.digest()
        previous = own.hex()
        old_long = old is not None and len(old) >= LONG_VALUE
        new_long = new is not None and len(new) >= LONG_VALUE
        stored.append((
            last_id, run.stamp_id, run.subject_id, run.connector_id, names[field],
            names[outcome], None if old_long else old, None if new_long else new,
            texts[old] if old_long and old is not None else None,
            texts[new] if new_long and new is not None else None,
            error, link, own if sqlite_rows else previous, run.reasons_id))
        link = own[:LINK_BYTES] if sqlite_rows else previous
    return stored, ChainHead(last_id, previous)


def cite(interner: RefInterner, records: Sequence[Normalised]) -> list[StoredRow]:
    """The references of `_normalised` records: what their stored rows hold instead of the
    text (ids of stamps, subjects, names and long values; short values inline). The rows
    of one append mostly share a stamp, and a record's fields are neighbours, so a key
    equal to the previous row's is not built again."""
    stamp_keys: list[StampKey] = []
    subject_keys: list[SubjectKey] = []
    stamp: StampKey = ("", _NO_STAMP[1])
    subject: SubjectKey = _NO_SUBJECT
    names: set[str] = set()
    texts: set[str] = set()
    for r in records:
        if r["at"] is not stamp[1] or r["run_id"] != stamp[0]:
            stamp = (r["run_id"], r["at"])
        if r["record_id"] != subject[1] or r["person_key"] != subject[2] \
                or r["connector"] != subject[0]:
            subject = (r["connector"], r["record_id"], r["person_key"])
        stamp_keys.append(stamp)
        subject_keys.append(subject)
        names.update((r["connector"], r["field"], r["outcome"]))
        for value in (r["old_value"], r["new_value"]):
            if value is not None and len(value) >= LONG_VALUE:
                texts.add(value)
    interner.stamp_ids(set(stamp_keys))
    interner.subject_ids(set(subject_keys))
    interner.name_ids(names)
    interner.text_ids(texts)
    return [_stored(r, interner, stamp_key, subject_key)
            for r, stamp_key, subject_key in zip(records, stamp_keys, subject_keys,
                                                  strict=True)]


def _stored(r: Normalised, interner: RefInterner, stamp: StampKey, subject: SubjectKey
            ) -> StoredRow:
    names, texts = interner.names, interner.texts
    old, new = r["old_value"], r["new_value"]
    old_long = old is not None and len(old) >= LONG_VALUE
    new_long = new is not None and len(new) >= LONG_VALUE
    return {"id": r["id"], "stamp_id": interner.stamps[stamp],
            "subject_id": interner.subjects[subject], "connector_id": names[r["connector"]],
            "field_id": names[r["field"]], "outcome_id": names[r["outcome"]],
            "old_value": None if old_long else old, "new_value": None if new_long else new,
            "old_text_id": texts[old] if old_long and old is not None else None,
            "new_text_id": texts[new] if new_long and new is not None else None,
            "error": r["error"], "prev_hash": r["prev_hash"], "row_hash": "",
            "reasons_id": None}


class RowReader:
    """Turns stored audit rows into the rows syncer shows: the text of what each row cites
    (run and time, connector, record, person, field, outcome, long values, reasons and
    model version), the time as aware UTC. What a batch cites is loaded per batch of rows,
    each item once."""

    def __init__(self, connection: Connection, anchor: tuple[int, str] = (0, GENESIS)
                 ) -> None:
        self.connection = connection
        self.cache: dict[int, tuple[str, list[ReasonJson]]] = {}
        self.refs = RefCache(connection)
        #: row id -> row_hash of the rows a row's prev_hash may be (the last row read,
        #: the archive cut the rows in the database start after)
        self.hashes: dict[int, str] = {anchor[0]: anchor[1]}
        self.anchor = anchor

    def read(self, batch: Sequence[StoredRead]) -> list[AuditRecord]:
        if len(self.cache) > _CACHE_LIMIT:
            self.cache.clear()
        load_reasons(self.connection, (row.reasons_id for row in batch), self.cache)
        refs = self.refs
        refs.load((row.stamp_id for row in batch), (row.subject_id for row in batch),
                  {i for row in batch for i in (row.connector_id, row.field_id,
                                                row.outcome_id)},
                  {i for row in batch for i in (row.old_text_id, row.new_text_id)})
        self._load_previous(batch)
        out = [self._row(row) for row in batch]
        self.hashes = {self.anchor[0]: self.anchor[1]}
        if batch:
            self.hashes[int(batch[-1].id)] = str(batch[-1].row_hash)
        return out

    def _load_previous(self, batch: Sequence[StoredRead]) -> None:
        """The row_hash of the row before each row of `batch` (in the batch, read before,
        or looked up), from which its whole prev_hash is read back."""
        hashes = self.hashes
        hashes.update((int(row.id), str(row.row_hash)) for row in batch)
        wanted = sorted({int(row.id) - 1 for row in batch} - set(hashes))
        for start in range(0, len(wanted), 5_000):
            chunk = wanted[start:start + 5_000]
            hashes.update((int(i), str(h)) for i, h in self.connection.execute(
                select(t.audit.c.id, t.audit.c.row_hash).where(t.audit.c.id.in_(chunk))))

    def _previous(self, row: StoredRead) -> str | None:
        """The row's prev_hash: the previous row's hash when the stored link is its start
        (always, unless rows were rewritten), else what is stored (verify flags it)."""
        link = row.prev_hash
        if link is None:
            return None
        before = self.hashes.get(int(row.id) - 1)
        return before if before is not None and before.startswith(link) else str(link)

    def _row(self, row: StoredRead) -> AuditRecord:
        refs = self.refs
        run_id, at = refs.stamps.get(row.stamp_id, _NO_STAMP)
        connector, record_id, person_key = refs.subjects.get(row.subject_id, _NO_SUBJECT)
        cited = row.reasons_id
        model_version, reasons = self.cache.get(int(cited), _MISSING) \
            if cited is not None else _MISSING
        return {
            "id": row.id, "at": as_utc(at), "run_id": run_id,
            "connector": refs.names.get(row.connector_id, connector),
            "record_id": record_id, "person_key": person_key,
            "field": refs.names.get(row.field_id, ""),
            "old_value": _value(row.old_value, row.old_text_id, refs),
            "new_value": _value(row.new_value, row.new_text_id, refs),
            "outcome": refs.names.get(row.outcome_id, ""), "error": row.error,
            "prev_hash": self._previous(row), "row_hash": row.row_hash,
            "model_version": model_version, "reasons": reasons}


def _value(inline: str | None, text_id: int | None, refs: RefCache) -> str | None:
    """A field value: inline when the row holds it (it wins), else its stored text."""
    if inline is not None or text_id is None:
        return inline
    return refs.texts.get(text_id, "")
