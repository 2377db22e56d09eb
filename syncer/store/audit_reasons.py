"""The reasons of audited decisions, stored once and referenced by the audit's field rows.

A decision writes a dozen fields to each CRM, each with an audit row (before schema 24
also an intent row), and every one of those rows cites the same reasons and model
version. Up to schema 8 each row carried the whole list (about 1.3 KB of JSON, 90% of
the audit's bytes) and the model version; from schema 9 a field row holds `reasons_id`, a
reference to one row here with both. Rows are content-addressed: `hash` is the sha256 of
the model version and the list's canonical JSON (`canonical_reasons`), so an identical
pair (the same decision's fields, people decided alike by one model, an empty list) is
stored once.

The hash chain still covers the reasons: a field row's hash is computed over its canonical
form with the reasons list in it (syncer/store/audit.py, unchanged since schema 2), and
verify rebuilds that form from the text stored here, so an edited reasons text breaks every
row that cites it. `hash` only finds an existing list on append; it proves nothing.

`syncer audit archive` removes the lists no remaining row cites (`forget_unreferenced`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    String,
    Table,
    delete,
    select,
)

from syncer.store.compact_json import PackedText
from syncer.store.decision_json import ReasonJson
from syncer.store.tables import audit, metadata

audit_reasons = Table(
    "audit_reasons", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    #: sha256 of `model_version` and `reasons`: how an append finds a stored pair
    Column("hash", String(64), nullable=False, unique=True),
    Column("model_version", String(80), nullable=False),
    #: the list as canonical JSON (sorted keys, compact); packed on SQLite (schema 18)
    Column("reasons", PackedText(), nullable=False),
)

#: what a field row cites: (model version, canonical reasons text)
Cited = tuple[str, str]

#: ids per IN (...) (SQLite's bound-variable cap is far above; PostgreSQL's too)
_CHUNK = 5_000


def canonical_reasons(reasons: object) -> str:
    """The stored text of a reasons list (None: an empty one): compact JSON, sorted keys,
    no NaN."""
    if reasons is None:
        reasons = []
    if not isinstance(reasons, list | tuple):
        raise TypeError(f"an audit row's reasons must be a list, not {type(reasons).__name__}")
    return json.dumps(list(reasons), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def reasons_hash(cited: Cited) -> str:
    model_version, text = cited
    return hashlib.sha256(f"{model_version}\n{text}".encode()).hexdigest()


class ReasonsInterner:
    """Finds or stores reasons lists within one transaction, each distinct text once.

    Used by the append under the chain's lock (so two appenders never race to store the
    same list) and by the schema 9 migration."""

    def __init__(self, connection: Connection, known: dict[Cited, int] | None = None,
                 learned: list[tuple[dict[Any, int], Hashable]] | None = None) -> None:
        """`known`: ids found before (audit_refs.KnownIds), each one added noted in
        `learned`; without them, only this interner's own."""
        self.connection = connection
        self.known: dict[Cited, int] = {} if known is None else known
        self.learned = [] if learned is None else learned

    def ids(self, pairs: Sequence[Cited]) -> list[int]:
        """The id of each (model version, reasons text) pair (stored when new), in order."""
        wanted = {reasons_hash(pair): pair for pair in set(pairs) if pair not in self.known}
        if wanted:
            self._resolve(wanted)
        return [self.known[pair] for pair in pairs]

    def _resolve(self, wanted: dict[str, Cited]) -> None:
        hashes = sorted(wanted)
        for start in range(0, len(hashes), _CHUNK):
            chunk = hashes[start:start + _CHUNK]
            for found_id, found_hash in self.connection.execute(
                    select(audit_reasons.c.id, audit_reasons.c.hash)
                    .where(audit_reasons.c.hash.in_(chunk))):
                pair = wanted.pop(str(found_hash))
                self.known[pair] = int(found_id)
                self.learned.append((self.known, pair))
        if wanted:
            self.connection.execute(audit_reasons.insert(), [
                {"hash": digest, "model_version": model_version, "reasons": text}
                for digest, (model_version, text) in wanted.items()])
            self._resolve(wanted)


def load_reasons(connection: Connection, ids: Iterable[int],
                 cache: dict[int, tuple[str, list[ReasonJson]]]) -> None:
    """(model version, decoded list) of the `ids` missing from `cache`, into it (one query
    per chunk)."""
    missing = sorted({int(i) for i in ids if i is not None and i not in cache})
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start:start + _CHUNK]
        for found_id, model_version, text in connection.execute(
                select(audit_reasons.c.id, audit_reasons.c.model_version,
                       audit_reasons.c.reasons).where(audit_reasons.c.id.in_(chunk))):
            cache[int(found_id)] = (str(model_version), json.loads(text))


def forget_unreferenced(connection: Connection, candidates: Iterable[int]) -> int:
    """Delete the lists among `candidates` that no audit row cites any more (after an
    archive removed rows); returns how many went. Reads the ids still cited once."""
    maybe = {int(i) for i in candidates}
    if not maybe:
        return 0
    cited = set(connection.execute(select(audit.c.reasons_id).distinct()).scalars())
    gone = sorted(maybe - cited)
    for start in range(0, len(gone), _CHUNK):
        connection.execute(delete(audit_reasons).where(
            audit_reasons.c.id.in_(gone[start:start + _CHUNK])))
    return len(gone)
