"""Who is who across CRMs, by record ids rather than by email alone.

A record keeps the person it was first matched to for as long as it lives: an email changed
on either side keeps the HubSpot <-> Salesforce pair together (matching on the new email
would split the person and leave a twin behind). A record syncer has never seen joins the
person whose records carry its email, or one its own predecessor belonged to (a Contact
converted from a Lead arrives after the conversion was reported), or else starts a person
of its own, keyed by its email at first sight when that key is free.

When a record stops taking writes (a converted lead, a merged-away duplicate) it is
retired: it keeps its activities (they are still the person's) but is never written to
again, and if its successor belonged to another person, the two people become one: the
successor's person survives, and records, stage history, assignments, shared field bases
and the further-along stage move to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from syncer.domain.identity import normalize_email
from syncer.domain.types import Person, Stage, Succession
from syncer.store import shared_values, stage_history
from syncer.store import tables as t
from syncer.store.batches import by_source, chunks


def resolve_keys(connection: Connection, people: Sequence[Person]) -> list[str]:
    """The person key of each record (in order), deciding it for records not seen before.

    A known record keeps its key. A new one joins, in this order: the person of a retired
    record it succeeds; the person whose records hold its email (the alphabetically first
    key if several do, so the pick is deterministic); a person started earlier in this same
    page with that email; else a new person keyed by its email (or by connector and id when
    it has no usable email or that key is taken by someone whose email moved on).
    """
    known = _known_keys(connection, people)
    emails = sorted({e for p in people if (e := normalize_email(p.email))})
    by_email = _keys_by_email(connection, emails)
    successors = _successor_keys(connection, people)
    taken = _taken_keys(connection, emails)
    page: dict[str, str] = {}
    keys: list[str] = []
    for person in people:
        key = known.get((person.source, person.record_id)) \
            or successors.get((person.source, person.record_id))
        email = normalize_email(person.email)
        if key is None and email is not None:
            key = by_email.get(email) or page.get(email)
            if key is None:
                key = email if email not in taken else None
        if key is None:
            key = f"record:{person.source}:{person.record_id}"
        if email is not None:
            page.setdefault(email, key)
        keys.append(key)
    return keys


def _pairs(people: Sequence[Person]) -> list[tuple[str, str]]:
    return [(p.source, p.record_id) for p in people]


def _known_keys(connection: Connection, people: Sequence[Person]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for source, ids in by_source(_pairs(people)).items():
        for chunk in chunks(ids):
            for record_id, key in connection.execute(
                    select(t.records.c.record_id, t.records.c.person_key).where(
                        t.records.c.connector == source,
                        t.records.c.record_id.in_(list(chunk)))):
                found[(source, record_id)] = key
    return found


def _keys_by_email(connection: Connection, emails: Sequence[str]) -> dict[str, str]:
    """email -> the first (sorted) person key holding a live record with that email."""
    found: dict[str, str] = {}
    for chunk in chunks(emails):
        rows = connection.execute(
            select(t.records.c.email, t.records.c.person_key).where(
                t.records.c.email.in_(list(chunk)), t.records.c.successor_id.is_(None))
            .order_by(t.records.c.email, t.records.c.person_key))
        for email, key in rows:
            found.setdefault(email, key)
    return found


def _successor_keys(connection: Connection, people: Sequence[Person]
                    ) -> dict[tuple[str, str], str]:
    """(connector, id) -> the person of a retired record this record succeeds."""
    found: dict[tuple[str, str], str] = {}
    for source, ids in by_source(_pairs(people)).items():
        for chunk in chunks(ids):
            for successor, key in connection.execute(
                    select(t.records.c.successor_id, t.records.c.person_key).where(
                        t.records.c.connector == source,
                        t.records.c.successor_id.in_(list(chunk)))
                    .order_by(t.records.c.person_key)):
                found.setdefault((source, successor), key)
    return found


def _taken_keys(connection: Connection, emails: Sequence[str]) -> set[str]:
    """Which of these emails are already in use as a person key."""
    taken: set[str] = set()
    for chunk in chunks(emails):
        taken.update(connection.execute(select(t.records.c.person_key).where(
            t.records.c.person_key.in_(list(chunk)))).scalars())
    return taken


@dataclass(frozen=True)
class Followed:
    """What applying one succession did: the record retired, the person it now belongs to,
    and the person folded into it (None when both records were one person already)."""

    succession: Succession
    person_key: str
    folded_key: str | None


def apply_successions(connection: Connection, successions: Sequence[Succession],
                      at: datetime, run_id: str) -> list[Followed]:
    """Retire each succession's old record and make its person the successor's.

    Unknown old records (never pulled) and successions already applied are skipped. The
    successor's person survives a fold; when the successor has not been pulled yet, the old
    record's person waits for it (resolve_keys follows `successor_id`).
    """
    done: list[Followed] = []
    for succession in successions:
        old = connection.execute(select(
            t.records.c.person_key, t.records.c.successor_id).where(
            t.records.c.connector == succession.source,
            t.records.c.record_id == succession.old_id)).first()
        if old is None or old.successor_id == succession.new_id:
            continue
        connection.execute(update(t.records).where(
            t.records.c.connector == succession.source,
            t.records.c.record_id == succession.old_id).values(
            successor_id=succession.new_id, retired_cause=succession.cause,
            duplicate_of=None))
        new_key = connection.execute(select(t.records.c.person_key).where(
            t.records.c.connector == succession.source,
            t.records.c.record_id == succession.new_id)).scalar()
        if new_key is None or new_key == old.person_key:
            done.append(Followed(succession, old.person_key, None))
            continue
        fold_person(connection, old.person_key, new_key, at, run_id)
        done.append(Followed(succession, new_key, old.person_key))
    return done


def fold_person(connection: Connection, from_key: str, to_key: str, at: datetime,
                run_id: str) -> None:
    """Make `from_key`'s person part of `to_key`'s: every record, the stage history, the
    owner assignments and shared field bases move; the decision kept is `to_key`'s with
    the further-along stage of the two, so a merge never moves anyone backwards (a stage
    raised that way is a `merge` row in the stage history)."""
    # The audit log is append-only: its old rows keep the key they had.
    for table in (t.records, t.assignments, t.dead_letters):
        connection.execute(update(table).where(table.c.person_key == from_key)
                           .values(person_key=to_key))
    shared_values.carry(connection, from_key, to_key)
    stage_history.carry(connection, from_key, to_key)
    _fold_decisions(connection, from_key, to_key, at, run_id)


def _fold_decisions(connection: Connection, from_key: str, to_key: str, at: datetime,
                    run_id: str) -> None:
    rows = {row.person_key: row for row in connection.execute(select(
        t.decisions.c.person_key, t.decisions.c.stage, t.decisions.c.model_version).where(
        t.decisions.c.person_key.in_([from_key, to_key])))}
    folded, kept = rows.get(from_key), rows.get(to_key)
    if folded is None:
        return
    if kept is None:
        connection.execute(update(t.decisions).where(t.decisions.c.person_key == from_key)
                           .values(person_key=to_key))
        return
    if Stage(folded.stage).rank > Stage(kept.stage).rank:
        connection.execute(update(t.decisions).where(t.decisions.c.person_key == to_key)
                           .values(stage=folded.stage))
        stage_history.append(connection, [{
            "person_key": to_key, "from_stage": kept.stage, "to_stage": folded.stage,
            "at": at, "cause": "merge", "model_version": kept.model_version,
            "run_id": run_id, "detail": f"merged with {from_key}, who was "
                                        f"{Stage(folded.stage).value.upper()}"}])
    connection.execute(delete(t.decisions).where(t.decisions.c.person_key == from_key))


def primary_records(records: Sequence[Person]) -> dict[tuple[str, str], str]:
    """(connector, record id) -> the primary record id, for every record that is a
    duplicate: another live record of the same person in the same connector.

    The primary is the record with the lowest id (numeric ids compared as numbers): the
    oldest record, which is also the one a CRM merge would usually keep; in Salesforce a
    Contact (003...) sorts before a Lead (00Q...), so a person's Contact is written rather
    than a stray Lead. Deterministic: the same records always give the same pick.
    """
    duplicates: dict[tuple[str, str], str] = {}
    for source, ids in by_source(_pairs(records)).items():
        if len(ids) < 2:
            continue
        primary = min(ids, key=_id_order)
        for record_id in ids:
            if record_id != primary:
                duplicates[(source, record_id)] = primary
    return duplicates


def _id_order(record_id: str) -> tuple[int, int, str]:
    return (0, int(record_id), "") if record_id.isdigit() else (1, 0, record_id)


def duplicate_flags(connection: Connection, pairs: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], str | None]:
    """The stored `duplicate_of` of these (connector, record id) pairs."""
    found: dict[tuple[str, str], str | None] = {}
    for source, ids in by_source(pairs).items():
        for chunk in chunks(ids):
            for record_id, duplicate_of in connection.execute(
                    select(t.records.c.record_id, t.records.c.duplicate_of).where(
                        t.records.c.connector == source,
                        t.records.c.record_id.in_(list(chunk)))):
                found[(source, record_id)] = duplicate_of
    return found


def set_duplicate_flags(connection: Connection,
                        flags: Mapping[tuple[str, str], str | None]) -> None:
    for (source, record_id), duplicate_of in flags.items():
        connection.execute(update(t.records).where(
            t.records.c.connector == source, t.records.c.record_id == record_id)
            .values(duplicate_of=duplicate_of))


@dataclass(frozen=True)
class Retired:
    """A record of the person that no longer takes writes, and the one it carries on as."""

    connector: str
    record_id: str
    object_type: str
    successor_id: str
    cause: str


def retired_records(connection: Connection, person_key: str) -> list[Retired]:
    """The person's retired records (converted leads, merged-away duplicates)."""
    rows = connection.execute(select(
        t.records.c.connector, t.records.c.record_id, t.records.c.object_type,
        t.records.c.successor_id, t.records.c.retired_cause).where(
        t.records.c.person_key == person_key, t.records.c.successor_id.is_not(None))
        .order_by(t.records.c.connector, t.records.c.record_id))
    return [Retired(r.connector, r.record_id, r.object_type, r.successor_id,
                    r.retired_cause or "retired") for r in rows]
