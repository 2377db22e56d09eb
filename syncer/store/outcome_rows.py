"""What the state store knows about who bought: the queries behind outcome history.

A person "reached an outcome" when syncer saw them at opportunity or customer (a stage
history row into either, whatever its cause: in practice `crm`, since scoring never earns
them) or saw a Salesforce lead converted (the identity audit row a succession leaves, with
the conversion time Salesforce reported as its evidence). syncer/run/outcome_history.py turns
these facts into history rows; the SQL lives here, as all SQL does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select

from syncer.domain.types import Stage
from syncer.store import tables as t
from syncer.store.audit import AuditFilter
from syncer.store.audit_chain import time_of
from syncer.store.repository import Store

#: Stages that count as a won outcome.
OUTCOME_STAGES: tuple[Stage, ...] = (Stage.OPPORTUNITY, Stage.CUSTOMER)


@dataclass(frozen=True, slots=True)
class OutcomeFacts:
    """One person's facts: when syncer first saw them reach an outcome (None: never) and
    when any of their records was last pulled."""

    person_key: str
    outcome_at: datetime | None
    last_pulled_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def outcome_facts(store: Store) -> dict[str, OutcomeFacts]:
    """Every person key the store holds records for, with its outcome facts."""
    history, records = t.stage_history, t.records
    with store.engine.connect() as connection:
        pulled = {key: _utc(at) for key, at in connection.execute(
            select(records.c.person_key, func.max(records.c.pulled_at))
            .group_by(records.c.person_key))}
        staged = {key: _utc(at) for key, at in connection.execute(
            select(history.c.person_key, func.min(history.c.at))
            .where(history.c.to_stage.in_([s.value for s in OUTCOME_STAGES]))
            .group_by(history.c.person_key))}
    converted: dict[str, datetime | None] = {}
    for row in store.audit_log.iter_rows(AuditFilter(field="identity", outcome="converted")):
        key = str(row["person_key"])
        reasons = row["reasons"]
        moment = _conversion_time(time_of(row), reasons if isinstance(reasons, list) else [])
        converted[key] = _earliest(converted.get(key), moment)
    return {key: OutcomeFacts(key, _earliest(staged.get(key), converted.get(key)), at)
            for key, at in pulled.items()}


def _conversion_time(seen_at: datetime | None, reasons: Iterable[object] | None
                     ) -> datetime | None:
    """When the lead was converted: the CRM's own time (the reason's evidence) when it
    gave one, else when syncer saw it."""
    for reason in reasons or []:
        if isinstance(reason, dict) and reason.get("evidence_at"):
            try:
                return _utc(datetime.fromisoformat(str(reason["evidence_at"])))
            except ValueError:
                break
    return seen_at
