"""Inbound events (webhooks, list imports) kept until the run that consumed them succeeded.

An accepted request is committed here before the sender gets its 202, so a daemon killed a
moment later loses nothing: on start the processor finds the events still `pending` and
runs them. An event is `done` only once a run that re-qualified its person finished, and
`echo` when it only reported syncer's own write. Two tables:

- `inbound_events`: one row per event, unique per (source, event id): a sender's resend
  or a re-imported row is recognised and stored once.
- `inbound_requests`: the signature of every accepted request for a while, so a captured
  request sent again inside the timestamp window is refused as a replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from syncer.store.database import Database
from syncer.store.tables import metadata

PENDING, DONE, ECHO = "pending", "done", "echo"
#: a request's signature is remembered this long (beyond any timestamp window allowed)
SIGNATURES_KEPT = timedelta(hours=2)

inbound_events = Table(
    "inbound_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(40), nullable=False),
    Column("event_id", String(200), nullable=False),
    #: "record": re-read `record_id` of connector `connector`; "person": a hand-raise
    #: carried whole in `payload`, stored as a record of `connector` (the source's name)
    Column("kind", String(10), nullable=False),
    Column("connector", String(40), nullable=False),
    Column("record_id", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_id", String(40)),
    Column("done_at", DateTime(timezone=True)),
    UniqueConstraint("source", "event_id", name="uq_inbound_events_source_event"),
    Index("ix_inbound_events_status", "status", "id"),
)

inbound_requests = Table(
    "inbound_requests", metadata,
    Column("source", String(40), primary_key=True),
    Column("signature", String(120), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_inbound_requests_received", "received_at"),
)


@dataclass(frozen=True)
class NewEvent:
    """An event as a route accepted it."""

    event_id: str
    kind: str
    connector: str
    record_id: str
    payload: Mapping[str, object]
    status: str = PENDING


@dataclass(frozen=True)
class StoredEvent:
    id: int
    source: str
    event_id: str
    kind: str
    connector: str
    record_id: str
    payload: Mapping[str, object]
    attempts: int


class Replayed(Exception):
    """The request's signature, or every event it carries, was seen before."""


def accept(store: Database, source: str, signature: str | None, events: Sequence[NewEvent],
           now: datetime) -> int:
    """Store a request's events in one transaction; returns how many were new. Raises
    Replayed for a signature seen before, or a request all of whose events are known
    (nothing is stored then). Events already known beside new ones are skipped."""
    try:
        with store.engine.begin() as tx:
            if signature is not None:
                tx.execute(delete(inbound_requests).where(
                    inbound_requests.c.received_at < now - SIGNATURES_KEPT))
                tx.execute(insert(inbound_requests).values(
                    source=source, signature=signature[:120], received_at=now))
            ids = sorted({e.event_id for e in events})
            known = set(tx.execute(select(inbound_events.c.event_id).where(
                inbound_events.c.source == source,
                inbound_events.c.event_id.in_(ids))).scalars()) if ids else set()
            fresh = {e.event_id: e for e in events if e.event_id not in known}
            if events and not fresh:
                raise Replayed(f"every event of this request was received before ({source})")
            if fresh:
                tx.execute(insert(inbound_events), [
                    {"source": source, "event_id": e.event_id, "kind": e.kind,
                     "connector": e.connector, "record_id": e.record_id,
                     "payload": dict(e.payload), "received_at": now, "status": e.status,
                     "attempts": 0, "done_at": now if e.status != PENDING else None}
                    for e in fresh.values()])
            return len(fresh)
    except IntegrityError:  # the same signature or event id committed by a racing request
        raise Replayed(f"this request was received before ({source})") from None


def pending(store: Database, limit: int = 5000) -> list[StoredEvent]:
    """The oldest pending events, oldest first."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(inbound_events).where(
            inbound_events.c.status == PENDING).order_by(inbound_events.c.id).limit(limit))
        return [StoredEvent(row.id, row.source, row.event_id, row.kind, row.connector,
                            row.record_id, dict(row.payload), row.attempts) for row in rows]


def finish(store: Database, ids: Iterable[int], run_id: str | None, now: datetime,
           status: str = DONE) -> None:
    """Mark events consumed by a run that succeeded (or recognised as echoes)."""
    chosen = sorted(ids)
    with store.engine.begin() as tx:
        for start in range(0, len(chosen), 500):
            tx.execute(update(inbound_events).where(
                inbound_events.c.id.in_(chosen[start:start + 500])).values(
                status=status, run_id=run_id, done_at=now))


def note_attempt(store: Database, ids: Iterable[int]) -> None:
    """Count a run that took these events and did not succeed (they stay pending)."""
    chosen = sorted(ids)
    with store.engine.begin() as tx:
        for start in range(0, len(chosen), 500):
            tx.execute(update(inbound_events).where(
                inbound_events.c.id.in_(chosen[start:start + 500])).values(
                attempts=inbound_events.c.attempts + 1))


def counts(store: Database) -> dict[str, int]:
    """Events per status (pending, done, echo)."""
    with store.engine.connect() as connection:
        return {str(status): int(count) for status, count in connection.execute(
            select(inbound_events.c.status, func.count()).group_by(inbound_events.c.status))}


def create_schema(connection: Connection) -> None:
    """Schema 10: inbound events and request signatures."""
    inbound_events.create(connection, checkfirst=True)
    inbound_requests.create(connection, checkfirst=True)
