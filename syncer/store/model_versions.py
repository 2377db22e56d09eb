"""Model publications in the store: which qualification model is active and how it got
there.

The rows (tables.model_publications) are append-only and the newest names the active
model, with the model file's full text, so any published version can be made active again
without its file. A `rollback` row pins its version: syncs do not publish the model file
over it until someone publishes explicitly (syncer/run/publication.py has the rules; this
module only reads and appends rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, RowMapping, delete, select

from syncer.domain.types import Reason
from syncer.store import tables as t
from syncer.store.repository import Store

PUBLISH = "publish"
ROLLBACK = "rollback"
#: the reason every audit row cites while a rollback is in effect
ROLLBACK_RULE = "model.rollback"
#: a counter every publication upserts first: it serialises publishers (the row lock on
#: PostgreSQL, the write lock on SQLite), so two never both append over the same head
_LOCK = "model.publications"


@dataclass(frozen=True, slots=True)
class Publication:
    """One row: `version` is the model active from `at` on; `previous_version` the one
    it replaced."""

    id: int
    at: datetime
    action: str
    version: str
    previous_version: str | None
    content: str
    note: str | None

    @property
    def pins(self) -> bool:
        """True for a rollback: its version stays active until an explicit publish."""
        return self.action == ROLLBACK


@dataclass(frozen=True, slots=True)
class RollbackNote:
    """A rollback in effect: what every decision of the runs under it is audited with."""

    from_version: str
    to_version: str
    at: datetime
    note: str | None = None

    @property
    def detail(self) -> str:
        text = (f"model rolled back from {self.from_version} to {self.to_version} at "
                f"{self.at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC")
        return f"{text} ({self.note})" if self.note else text

    def reason(self) -> Reason:
        return Reason(ROLLBACK_RULE, 0.0, self.detail, self.at)


def _row(row: RowMapping) -> Publication:
    at: datetime = row["at"]
    return Publication(
        id=int(row["id"]), at=at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at,
        action=str(row["action"]), version=str(row["version"]),
        previous_version=row["previous_version"], content=str(row["content"]),
        note=row["note"])


def history(store: Store, limit: int | None = None) -> list[Publication]:
    """Publications newest first (all of them, or the newest `limit`)."""
    query = select(t.model_publications).order_by(t.model_publications.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as connection:
        return [_row(row) for row in connection.execute(query).mappings()]


def newest(connection: Connection) -> Publication | None:
    """The row naming the active model, read in the caller's transaction."""
    row = connection.execute(select(t.model_publications).order_by(
        t.model_publications.c.id.desc()).limit(1)).mappings().one_or_none()
    return _row(row) if row is not None else None


def active(store: Store) -> Publication | None:
    """The row naming the active model; None before the first publication."""
    with store.engine.connect() as connection:
        return newest(connection)


def lock(store: Store, connection: Connection, at: datetime) -> None:
    """Take the publication lock for the rest of the caller's transaction; call it first,
    so what the transaction then reads is what it appends over."""
    store.set_counter(connection, _LOCK, int(at.timestamp()))


def append(connection: Connection, *, at: datetime, action: str, version: str,
           previous_version: str | None, content: str, note: str | None,
           reset_counters: Sequence[str] = ()) -> Publication:
    """Append one row; in the same transaction, delete the counters whose names start with
    one of `reset_counters` (e.g. "rescored.", so the next sync re-decides everyone)."""
    if action not in (PUBLISH, ROLLBACK):
        raise ValueError(f"unknown publication action {action!r}")
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware (UTC)")
    result = connection.execute(t.model_publications.insert().values(
        at=at, action=action, version=version, previous_version=previous_version,
        content=content, note=note))
    for prefix in reset_counters:
        connection.execute(delete(t.counters).where(
            t.counters.c.name.startswith(prefix, autoescape=True)))
    key = result.inserted_primary_key
    assert key is not None
    return Publication(int(key[0]), at, action, version, previous_version, content, note)


def rollback_of(publication: Publication | None) -> RollbackNote | None:
    """The rollback a row puts in effect, if it is one."""
    if publication is None or not publication.pins:
        return None
    return RollbackNote(publication.previous_version or "?", publication.version,
                        publication.at, publication.note)


def rollback_note(store: Store, model_version: str) -> Reason | None:
    """The reason audit rows cite when a run decides with `model_version` while a rollback
    to it is in effect (None otherwise): what run_sync hands its Writer."""
    note = rollback_of(active(store))
    return note.reason() if note is not None and note.to_version == model_version else None
