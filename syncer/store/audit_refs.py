"""What audit field rows cite instead of repeating it (schema 18): stamps, subjects, names
and long texts, each stored once.

A 100,000-person sync writes millions of audit rows, and before schema 18 each one carried
its run id, connector, record id, person key, field name and outcome as text (about
100 bytes a row, and as much again in the indexes over the person, record and run). Most
of those repeat: a run's rows share one time and run id, a record's rows one connector,
record id and person key, and a handful of field names and outcomes cover every row. So a
row now holds integer references:

- `audit_stamps`: (run id, time): every row of a push shares one, and the run and time
  filters find their rows through the row's one stamp index;
- `audit_subjects`: (connector, record id, person key): the person and record filters
  find a subject first, then its rows through the row's subject index. A record whose
  person key changes gets a new subject; old rows keep the key they had;
- `audit_names`: connectors, field names and outcomes. `intent` is always id 1
  (`INTENT_ID`): the outcome of the write-ahead rows the audit held before schema 24
  (syncer/store/intents_legacy.py finds the open ones by it);
- `audit_texts`: field values of `LONG_VALUE` characters or more (the reasons text written
  to the CRM, the owner's reason), content-addressed like the reasons lists: the value a
  row writes and the next run's old value share one.

Nothing here changes what a row says or what its hash covers: the rows read back are the
same dicts as before (syncer/store/audit.py resolves the references), so the hash chain,
the archive files and every export are unchanged. The tables are only ever appended to by
the audit append (under the chain's lock); the archive removes the texts no row cites.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    select,
    text,
    union,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RootTransaction

from syncer.store.audit_chain import as_utc
from syncer.store.column_types import MicroTime, Sha256Hex
from syncer.store.compact_json import PackedText
from syncer.store.tables import audit, audit_archives, metadata

_ID = BigInteger().with_variant(Integer, "sqlite")
#: values this long or longer are stored once in audit_texts; shorter ones in the row
LONG_VALUE = 48
#: the id of the name `intent`, fixed in every state (schema 24's step finds the audit's
#: old intent rows by it)
INTENT_ID = 1
INTENT = "intent"
#: keys per IN (...)
_CHUNK = 2_000

audit_stamps = Table(
    "audit_stamps", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("at", MicroTime(), nullable=False),
    Index("ix_audit_stamps_run", "run_id", "at", unique=True),
    Index("ix_audit_stamps_at", "at"),
)

audit_subjects = Table(
    "audit_subjects", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("connector", String(40), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("person_key", String(320), nullable=False),
    Index("ix_audit_subjects_record", "record_id", "connector", "person_key", unique=True),
    Index("ix_audit_subjects_person", "person_key"),
)

audit_names = Table(
    "audit_names", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(320), nullable=False, unique=True),
)

audit_texts = Table(
    "audit_texts", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    #: sha256 of the text: how an append finds a stored one (it proves nothing)
    Column("hash", Sha256Hex(), nullable=False, unique=True),
    Column("text", PackedText(), nullable=False),
)

StampKey = tuple[str, datetime]
SubjectKey = tuple[str, str, str]
K = TypeVar("K", bound=Hashable)


def seed_names(connection: Connection) -> None:
    """Give `intent` its fixed id (fresh and migrated states; idempotent)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(audit_names).values(id=INTENT_ID, name=INTENT)
                       .on_conflict_do_nothing())
    if dialect is postgresql:  # the id sequence moves past the id given above
        connection.execute(text("SELECT setval(pg_get_serial_sequence('audit_names', 'id'), "
                                "(SELECT MAX(id) FROM audit_names))"))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: what an append learned: each id it put in a dict of known ids, by dict and key (so a
#: rolled back transaction's ids can be taken out again: KnownIds)
Learned = list[tuple[dict[Any, int], Hashable]]


def _intern(connection: Connection, table: Table, keys: Iterable[K],
            lookup: Callable[[list[K]], dict[K, int]],
            values: Callable[[K], dict[str, object]], known: dict[K, int],
            learned: Learned) -> None:
    """Ids of `keys` into `known` (each one added noted in `learned`): found by `lookup`,
    the rest inserted and looked up."""
    missing = list({key for key in keys if key not in known})
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start:start + _CHUNK]
        found = lookup(chunk)
        new = [key for key in chunk if key not in found]
        if new:
            connection.execute(table.insert(), [values(key) for key in new])
            found.update(lookup(new))
        known.update(found)
        learned.extend((known, key) for key in found)


class RefInterner:
    """Finds or stores the stamps, subjects, names and texts of rows being appended, within
    the append's transaction (under the chain lock, so appenders never race)."""

    def __init__(self, connection: Connection, known: KnownIds | None = None) -> None:
        """`known`: the ids earlier appends of this process found (see KnownIds); without
        it, only this interner's own."""
        self.connection = connection
        known = known or KnownIds()
        self.stamps, self.subjects = known.stamps, known.subjects
        self.names, self.texts = known.names, known.texts
        self.learned = known.learned

    def stamp_ids(self, keys: Iterable[StampKey]) -> None:
        def lookup(chunk: list[StampKey]) -> dict[StampKey, int]:
            # by run AND time, both in the unique index: by run alone each append read
            # every stamp its run had made so far (one per push: quadratic in a run)
            runs = sorted({run for run, _at in chunk})
            times = sorted({at for _run, at in chunk})
            found = self.connection.execute(select(
                audit_stamps.c.id, audit_stamps.c.run_id, audit_stamps.c.at).where(
                audit_stamps.c.run_id.in_(runs), audit_stamps.c.at.in_(times)))
            wanted = set(chunk)
            return {key: int(i) for i, run, at in found
                    if (key := (str(run), as_utc(at))) in wanted}

        _intern(self.connection, audit_stamps, keys, lookup,
                lambda key: {"run_id": key[0], "at": key[1]}, self.stamps, self.learned)

    def subject_ids(self, keys: Iterable[SubjectKey]) -> None:
        def lookup(chunk: list[SubjectKey]) -> dict[SubjectKey, int]:
            records = sorted({record for _connector, record, _person in chunk})
            s = audit_subjects.c
            found = self.connection.execute(select(s.id, s.connector, s.record_id,
                                                   s.person_key).where(s.record_id.in_(records)))
            wanted = set(chunk)
            return {key: int(i) for i, connector, record, person in found
                    if (key := (str(connector), str(record), str(person))) in wanted}

        _intern(self.connection, audit_subjects, keys, lookup,
                lambda key: {"connector": key[0], "record_id": key[1], "person_key": key[2]},
                self.subjects, self.learned)

    def name_ids(self, names: Iterable[str]) -> None:
        def lookup(chunk: list[str]) -> dict[str, int]:
            found = self.connection.execute(select(audit_names.c.id, audit_names.c.name)
                                            .where(audit_names.c.name.in_(chunk)))
            return {str(name): int(i) for i, name in found}

        _intern(self.connection, audit_names, names, lookup, lambda key: {"name": key},
                self.names, self.learned)

    def text_ids(self, texts: Iterable[str]) -> None:
        """Ids of long values, keyed by their text (found by their hash)."""
        digests: dict[str, str] = {}
        by_hash: dict[str, str] = {}

        def lookup(chunk: list[str]) -> dict[str, int]:
            for value in chunk:
                if value not in digests:
                    digests[value] = digest = text_hash(value)
                    by_hash[digest] = value
            found = self.connection.execute(select(audit_texts.c.id, audit_texts.c.hash)
                                            .where(audit_texts.c.hash.in_(
                                                [digests[value] for value in chunk])))
            return {by_hash[str(digest)]: int(i) for i, digest in found}

        _intern(self.connection, audit_texts, texts, lookup,
                lambda key: {"hash": digests[key], "text": key}, self.texts, self.learned)


class KnownIds:
    """The ids of stamps, subjects, names, texts and reasons lists that appends of this
    process found or stored, kept for the appends after them: an outcome append cites
    what its intent append stored a moment before, and every append the same few names,
    so most of its look-ups were of ids this process already had.

    An id is trusted only once the transaction that learned it is known to have
    committed, since a rolled back one leaves no row (and SQLite hands its ids out again).
    What an append learns is `learned`, valid in its own transaction only, until a later
    append, holding the chain's lock (so no other appending transaction is still open),
    finds the last row that append chained (`end`: its id and hash) in the chain: from
    another transaction, its ids are then committed ones; if the row is missing (rolled
    back, a savepoint undone) they are dropped. Texts and reasons lists are the only cited
    rows ever deleted, by an archive (syncer/store/audit_archive.py), which records a new
    cut in the same transaction: a new cut drops every known text and reasons id. Each
    kind is bounded (LIMIT): only neighbouring appends share much."""

    LIMIT = 5_000

    def __init__(self) -> None:
        self.stamps: dict[StampKey, int] = {}
        self.subjects: dict[SubjectKey, int] = {}
        self.names: dict[str, int] = {INTENT: INTENT_ID}
        self.texts: dict[str, int] = {}
        #: (model version, canonical reasons text) -> audit_reasons.id
        self.reasons: dict[tuple[str, str], int] = {}
        self.learned: Learned = []
        #: (id, hash) of the last row chained by the appends that learned `learned`
        self._proof: tuple[int, str] | None = None
        self._transaction: weakref.ref[RootTransaction] | None = None
        self._cut: object = None

    def begin(self, connection: Connection, last_id: int, head_hash: str) -> None:
        """Before an append cites anything, with the chain locked and its head read:
        keep what may be cited in this transaction, drop the rest."""
        cut = connection.execute(select(func.max(audit_archives.c.last_id))).scalar()
        if cut != self._cut:
            self._cut = cut
            self.texts.clear()
            self.reasons.clear()
        if self.learned:
            transaction = connection.get_transaction()
            if not self._chained(connection, last_id, head_hash):
                for known, key in self.learned:
                    known.pop(key, None)
                self.learned.clear()
            elif self._transaction is None or self._transaction() is not transaction:
                self.learned.clear()  # committed
        if not self.learned:
            self._transaction = self._proof = None
            for known in (self.stamps, self.subjects, self.names, self.texts, self.reasons):
                if len(known) > self.LIMIT:
                    known.clear()
            self.names[INTENT] = INTENT_ID

    def end(self, connection: Connection, last_id: int, head_hash: str) -> None:
        """After an append chained its rows: the last of them proves its ids later."""
        transaction = connection.get_transaction()
        self._transaction = weakref.ref(transaction) if transaction is not None else None
        self._proof = (last_id, head_hash)

    def _chained(self, connection: Connection, last_id: int, head_hash: str) -> bool:
        """Whether the proof row is in the chain this transaction sees."""
        if self._proof is None:
            return False
        proof_id, proof_hash = self._proof
        if (last_id, head_hash) == self._proof:
            return True
        if last_id < proof_id:
            return False
        stored = connection.execute(select(audit.c.row_hash).where(audit.c.id == proof_id)
                                    ).scalar()
        return stored == proof_hash


class RefCache:
    """The stamps, subjects, names and texts rows cite, loaded per batch of rows (one query
    per kind, only the ids not seen yet) and kept while a reader walks on."""

    LIMIT = 50_000

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.stamps: dict[int, StampKey] = {}
        self.subjects: dict[int, SubjectKey] = {}
        self.names: dict[int, str] = {}
        self.texts: dict[int, str] = {}

    def load(self, stamps: Iterable[int], subjects: Iterable[int], names: Iterable[int],
             texts: Iterable[int]) -> None:
        if max(len(self.stamps), len(self.subjects), len(self.texts)) > self.LIMIT:
            self.stamps.clear()
            self.subjects.clear()
            self.texts.clear()
        s, j, n, x = audit_stamps.c, audit_subjects.c, audit_names.c, audit_texts.c
        run = self.connection.execute
        for chunk in _missing(stamps, self.stamps):
            for i, run_id, at in run(select(s.id, s.run_id, s.at).where(s.id.in_(chunk))):
                self.stamps[int(i)] = (str(run_id), as_utc(at))
        for chunk in _missing(subjects, self.subjects):
            for i, connector, record, person in run(select(
                    j.id, j.connector, j.record_id, j.person_key).where(j.id.in_(chunk))):
                self.subjects[int(i)] = (str(connector), str(record), str(person))
        for chunk in _missing(names, self.names):
            for i, name in run(select(n.id, n.name).where(n.id.in_(chunk))):
                self.names[int(i)] = str(name)
        for chunk in _missing(texts, self.texts):
            for i, value in run(select(x.id, x.text).where(x.id.in_(chunk))):
                self.texts[int(i)] = str(value)


def _missing(ids: Iterable[int | None], known: Mapping[int, object]) -> Iterator[list[int]]:
    """The ids not `known` yet, in chunks for IN (...)."""
    missing = sorted({int(i) for i in ids if i is not None} - set(known))
    for start in range(0, len(missing), _CHUNK):
        yield missing[start:start + _CHUNK]


def forget_unreferenced_texts(connection: Connection, candidates: Iterable[int]) -> int:
    """Delete the texts among `candidates` no audit row cites any more (after an archive
    removed rows); returns how many went."""
    maybe = {int(i) for i in candidates if i is not None}
    if not maybe:
        return 0
    cited_query = union(select(audit.c.old_text_id), select(audit.c.new_text_id))
    cited = {i for i in connection.execute(cited_query).scalars() if i is not None}
    gone = sorted(maybe - cited)
    for start in range(0, len(gone), _CHUNK):
        connection.execute(delete(audit_texts).where(
            audit_texts.c.id.in_(gone[start:start + _CHUNK])))
    return len(gone)
