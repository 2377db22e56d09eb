"""Creating people in a CRM where they do not exist yet, behind the qualification gate.

A person syncer knows from one CRM is created in another only when that connector has a
`create:` section and the person passes its gate (by default: MQL or further along), in
the same run that qualified them. Everyone else is never created there: pushing every
form-filler into Salesforce is how sales ends up ignoring the lead queue.

A created record is stored straight away with the values it was created with, so the next
run diffs against it and never creates the person twice. A record the CRM already had
(HubSpot answers 409 for a known email) is linked instead, and syncer's values are pushed
to it like to any other record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import structlog

from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.domain.connector_config import CreateConfig
from syncer.domain.identity import normalize_email
from syncer.domain.types import Decision, NewPerson, Person, RecordUpdate
from syncer.run.audit_trail import IDENTITY, AuditRow, CreationOutcome, RunStamp, creation_row
from syncer.run.push import Item
from syncer.store.repository import Store, WrittenRow

T = TypeVar("T")

log = structlog.get_logger(__name__)


def passes_gate(gate: CreateConfig, decision: Decision) -> bool:
    """Whether a decision lets its person be created (stage, and score and grade if set)."""
    if decision.stage.rank < gate.min_stage.rank:
        return False
    if gate.min_score is not None and decision.score < gate.min_score:
        return False
    return not gate.fit_grades or decision.fit_grade in gate.fit_grades


def new_person(records: Sequence[Person], decision: Decision,
               values: Mapping[str, str | None]) -> NewPerson | None:
    """The NewPerson for a profile's records (precedence order), None without an email."""
    email = normalize_email(_first(r.email for r in records))
    if email is None:
        return None
    return NewPerson(key=decision.key, email=email,
                     first_name=_first(r.first_name for r in records),
                     last_name=_first(r.last_name for r in records),
                     title=_first(r.title for r in records),
                     company=_first(r.company for r in records),
                     industry=_first(r.industry for r in records),
                     employees=_first(r.employees for r in records),
                     country=_first(r.country for r in records), values=dict(values))


def _first(values: Iterable[T | None]) -> T | None:
    """The first value given (records in precedence order), skipping empty ones."""
    return next((v for v in values if v not in (None, "")), None)


@dataclass
class CreationTally:
    """Per connector: people created, linked to an existing record, failed, held by the
    gate; and the creations a dry run would make."""

    created: Counter[str] = field(default_factory=Counter)
    linked: Counter[str] = field(default_factory=Counter)
    create_failed: Counter[str] = field(default_factory=Counter)
    gated: Counter[str] = field(default_factory=Counter)
    planned_creations: list[tuple[str, str]] = field(default_factory=list)


class Creator:
    """Queues the creations a run decides and makes them, recording each outcome."""

    def __init__(self, loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                 now: datetime, run_id: str, tally: CreationTally) -> None:
        self.loaded = loaded
        self.store = store
        self.connectors = connectors
        self.now = now
        self.run_id = run_id
        self.tally = tally
        self.pending: dict[str, list[tuple[NewPerson, Decision]]] = {}

    def targets(self, records: Sequence[Person]) -> list[str]:
        """Connectors this person could be created in: a `create:` section, no live record."""
        present = {r.source for r in records}
        return [c.name for c in self.loaded.config.connectors
                if c.create is not None and c.create.enabled and c.name in self.connectors
                and c.name not in present]

    def consider(self, name: str, records: Sequence[Person], decision: Decision,
                 values: Mapping[str, str | None], dry_run: bool) -> None:
        """Queue the person for creation in `name` if they pass its gate."""
        gate = self.loaded.connector(name).create
        assert gate is not None
        person = new_person(records, decision, values)
        if person is None:
            return
        if not passes_gate(gate, decision):
            self.tally.gated[name] += 1
            return
        if dry_run:
            self.tally.planned_creations.append((name, decision.key))
            return
        self.pending.setdefault(name, []).append((person, decision))

    def flush(self) -> dict[str, list[Item]]:
        """Create everything queued; returns, per connector, the pushes owed to records
        that already existed (linked), which the caller writes like any other update."""
        owed: dict[str, list[Item]] = {}
        for name, queued in self.pending.items():
            if queued:
                owed[name] = self._create(name, queued)
        self.pending = {}
        return owed

    def _create(self, name: str, queued: list[tuple[NewPerson, Decision]]) -> list[Item]:
        # No write precedes a creation, so ask the run's fence first: a run that lost its
        # lock must not create people another run may be creating too.
        self.store.check_fence()
        results = self.connectors[name].create([person for person, _ in queued])
        records: list[Person] = []
        keys: list[str] = []
        written: list[WrittenRow] = []
        audit: list[AuditRow] = []
        owed: list[Item] = []
        stamp = RunStamp(self.now, self.run_id)
        for (person, decision), result in zip(queued, results, strict=True):
            if not result.ok or result.record_id is None:
                self.tally.create_failed[name] += 1
                audit.append(creation_row(stamp, name, person.key, decision, "", IDENTITY,
                                          "create", "failed",
                                          error=f"{result.error_code}: {result.message}"))
                log.warning("create.failed", connector=name, error_code=result.error_code)
                continue
            record = Person(source=name, record_id=result.record_id,
                            object_type=result.object_type or "", email=person.email,
                            first_name=person.first_name, last_name=person.last_name,
                            title=person.title, company=person.company,
                            industry=person.industry, employees=person.employees,
                            country=person.country,
                            crm_values={} if result.existed else dict(person.values))
            records.append(record)
            keys.append(person.key)
            outcome: CreationOutcome = "linked" if result.existed else "created"
            audit.append(creation_row(stamp, name, person.key, decision, result.record_id,
                                      IDENTITY, f"{outcome} {record.object_type}", outcome))
            if result.existed:
                self.tally.linked[name] += 1
                owed.append((RecordUpdate(result.record_id, record.object_type,
                                          dict(person.values)), record, decision))
                continue
            self.tally.created[name] += 1
            for crm_field, value in person.values.items():
                audit.append(creation_row(stamp, name, person.key, decision,
                                          result.record_id, crm_field, value, "written"))
                written.append({"connector": name, "record_id": result.record_id,
                                "field": crm_field, "value": value, "written_at": self.now,
                                "run_id": self.run_id})
        with self.store.transaction() as tx:
            self.store.save_records(tx, records, keys, self.now)
            self.store.upsert_written(tx, written)
            self.store.append_audit(tx, audit)
        log.info("create.done", connector=name, created=self.tally.created[name],
                 linked=self.tally.linked[name], failed=self.tally.create_failed[name])
        return owed
