"""State routing needs between runs: rotation positions, today's assignments per rep, who
owns which account, and the assignments themselves (for speed to lead and the report)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TypedDict

from sqlalchemy import Connection, RowMapping, Select, func, select, update

from syncer.domain.json_values import JSONMapping
from syncer.domain.values import canonical
from syncer.store import tables as t
from syncer.store.repository import Store

POSITION_PREFIX = "routing.rr."
#: assignments rows that hand no one a person (the SLA sending them back to nurture): not
#: counted toward a rep's daily cap
NOT_HANDED = ("sla_recycle",)


class AssignmentRow(TypedDict):
    """One stored assignment (times aware UTC): speed to lead, the report, the admin."""

    id: int
    person_key: str
    owner_email: str
    team: str | None
    rule: str
    reason: str
    stage: str
    qualified_at: datetime
    assigned_at: datetime
    owner_written_at: datetime | None
    run_id: str


class SlaEvent(TypedDict):
    """A reassignment, queue hand-over or recycle the speed-to-lead SLA made (the alerts)."""

    person_key: str
    rule: str
    owner_email: str
    reason: str
    run_id: str


def positions(store: Store, teams: Iterable[str]) -> dict[str, int]:
    """Each team's stored rotation position (0 for a team never rotated)."""
    return {team: store.counter(POSITION_PREFIX + team) for team in teams}


def save_positions(store: Store, connection: Connection, values: Mapping[str, int]) -> None:
    for team, value in values.items():
        store.set_counter(connection, POSITION_PREFIX + team, value)


def assigned_on(store: Store, day_start: datetime) -> dict[str, int]:
    """Rep email -> people assigned to them on the UTC day starting at `day_start`."""
    query = (select(t.assignments.c.owner_email, func.count())
             .where(t.assignments.c.assigned_at >= day_start,
                    t.assignments.c.assigned_at < day_start + timedelta(days=1),
                    t.assignments.c.rule.not_in(NOT_HANDED))
             .group_by(t.assignments.c.owner_email))
    with store.engine.connect() as connection:
        return {email: int(count) for email, count in connection.execute(query)}


def account_owners(store: Store, owner_of: Callable[[str, JSONMapping], str | None],
                   keys_of: Callable[[JSONMapping, str], Sequence[str]],
                   owner_fields: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Account key -> the rep who owns the account, for routing's account match.

    `owner_of(connector, crm_values)` gives a record's active human owner (or None);
    `keys_of(fields, person_key)` gives the record's account keys (domain, company);
    `owner_fields` names each connector's owner field. An owner a person set in a CRM votes:
    the rep who owns most records under a key gets it, ties to the alphabetically first.
    An owner syncer wrote itself (the record still holds the value syncer last wrote there)
    does not vote; it fills only keys no person decided, the smallest person key first:
    the same first-come order in which a run routes people, so the index does not depend
    on which of a run's writes had reached the CRMs when a later run started.
    """
    ours = _owners_written(store, owner_fields or {})
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    routed: list[tuple[str, Sequence[str], str]] = []
    query = select(t.records.c.connector, t.records.c.record_id, t.records.c.person_key,
                   t.records.c.fields, t.records.c.crm_values)
    with store.engine.connect() as connection:
        for row in connection.execution_options(yield_per=2000).execute(query):
            owner = owner_of(row.connector, row.crm_values)
            if owner is None:
                continue
            keys = keys_of(row.fields, row.person_key)
            field = (owner_fields or {}).get(row.connector)
            written = ours.get((row.connector, row.record_id))
            if field is not None and written is not None \
                    and canonical(row.crm_values.get(field)) == canonical(written):
                routed.append((row.person_key, keys, owner))
                continue
            for key in keys:
                votes[key][owner] += 1
    index = {key: min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
             for key, counter in votes.items()}
    for _, keys, owner in sorted(routed):
        for key in keys:
            index.setdefault(key, owner)
    return index


def _owners_written(store: Store, owner_fields: Mapping[str, str | None]
                    ) -> dict[tuple[str, str], str | None]:
    """(connector, record id) -> the owner value syncer itself last wrote there."""
    found: dict[tuple[str, str], str | None] = {}
    with store.engine.connect() as connection:
        for connector, field in owner_fields.items():
            if field is None:
                continue
            query = select(t.written.c.record_id, t.written.c.value).where(
                t.written.c.connector == connector, t.written.c.field == field,
                t.written.c.origin == "syncer")
            for record_id, value in connection.execution_options(yield_per=2000).execute(query):
                found[(connector, record_id)] = value
    return found


def save_assignments(connection: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    if rows:
        connection.execute(t.assignments.insert(), list(rows))


def mark_owner_written(connection: Connection, person_keys: Iterable[str],
                       at: datetime) -> None:
    """The first time an assigned owner reaches a CRM ends that person's speed to lead."""
    keys = sorted(set(person_keys))
    for start in range(0, len(keys), 500):
        connection.execute(update(t.assignments).where(
            t.assignments.c.person_key.in_(keys[start:start + 500]),
            t.assignments.c.owner_written_at.is_(None)).values(owner_written_at=at))


#: (person key, owner, rule, team, assigned_at) of one assignment, as the SLA reads it
MarkRow = tuple[str, str, str, str | None, datetime]
#: what `_mark_query` selects: a MarkRow and the assignment's id (the order made)
MarkQuery = Select[str, str, str, str | None, datetime, int]


def _mark_query() -> MarkQuery:
    a = t.assignments.c
    return select(a.person_key, a.owner_email, a.rule, a.team, a.assigned_at, a.id)


def _mark_rows(store: Store, query: MarkQuery) -> list[MarkRow]:
    """The rows by person key, then in the order made (sorted here: the database orders
    by the indexed person key alone, which a LIMIT can stop early)."""
    with store.engine.connect() as connection:
        rows = sorted(connection.execute(query), key=lambda row: (row.person_key, row.id))
    return [(str(row.person_key), str(row.owner_email), str(row.rule), row.team,
             _utc(row.assigned_at)) for row in rows]


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def marks_from(store: Store, first_key: str, limit: int) -> list[MarkRow]:
    """Up to `limit` assignments of people from `first_key` on, by person key then in the
    order they were made: what the speed-to-lead SLA reads while a run decides people in
    ascending key order (syncer/run/sla.py)."""
    a = t.assignments.c
    return _mark_rows(store, _mark_query().where(a.person_key >= first_key)
                      .order_by(a.person_key).limit(limit))


def marks_of(store: Store, key: str) -> list[MarkRow]:
    a = t.assignments.c
    return _mark_rows(store, _mark_query().where(a.person_key == key))


def marks_since(store: Store, since: datetime) -> list[MarkRow]:
    """Every assignment of the people assigned anything at or after `since`, by person key
    then in the order made: the only people whose SLA can run out soon."""
    a = t.assignments.c
    recent = select(a.person_key).where(a.assigned_at >= since).distinct()
    return _mark_rows(store, _mark_query().where(a.person_key.in_(recent)))


def sla_events(store: Store, run_ids: Sequence[str]) -> list[SlaEvent]:
    """The speed-to-lead SLA's reassignments, queue hand-overs and recycles made by these
    runs (person_key, rule, owner_email, reason, run_id), in the order made: what the
    alerts tell."""
    if not run_ids:
        return []
    query = (select(t.assignments.c.person_key, t.assignments.c.rule,
                    t.assignments.c.owner_email, t.assignments.c.reason,
                    t.assignments.c.run_id)
             .where(t.assignments.c.run_id.in_(sorted(set(run_ids))),
                    t.assignments.c.rule.in_(("sla_reassign", "sla_queue", "sla_recycle")))
             .order_by(t.assignments.c.id))
    with store.engine.connect() as connection:
        return [SlaEvent(person_key=person_key, rule=rule, owner_email=owner, reason=reason,
                         run_id=run_id)
                for person_key, rule, owner, reason, run_id in connection.execute(query)]


def assignment_rows(store: Store) -> list[AssignmentRow]:
    with store.engine.connect() as connection:
        return [_assignment(row) for row in connection.execute(
            select(t.assignments).order_by(t.assignments.c.id)).mappings()]


def _assignment(row: RowMapping) -> AssignmentRow:
    written = row["owner_written_at"]
    return AssignmentRow(
        id=row["id"], person_key=row["person_key"], owner_email=row["owner_email"],
        team=row["team"], rule=row["rule"], reason=row["reason"], stage=row["stage"],
        qualified_at=_utc(row["qualified_at"]), assigned_at=_utc(row["assigned_at"]),
        owner_written_at=_utc(written) if written is not None else None, run_id=row["run_id"])
