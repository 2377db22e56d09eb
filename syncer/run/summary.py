"""What one run did: the tally every stage adds to and the runs table keeps.

Apart from the pipeline so the stages (syncer/run/chunk.py) and the reports that read a
run (syncer/run/dry_run_report.py, the demo) share it without importing the run itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from syncer.domain.api_usage import UsageSummary, usage_stats
from syncer.domain.types import Decision
from syncer.run.create import CreationTally
from syncer.run.push import WriteTally
from syncer.store.locks import Holder


@dataclass(kw_only=True)
class RunSummary(WriteTally):
    """Everything one run did; `stats()` is what the runs table and the logs keep."""

    run_id: str
    dry_run: bool
    #: how the run ended, as run history keeps it (`skipped`: another run held the lock)
    status: str = "running"
    #: who held the lock, when the run was skipped
    held_by: Holder | None = None
    people: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    owners_assigned: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)
    records_pulled: Counter[str] = field(default_factory=Counter)
    activities_pulled: Counter[str] = field(default_factory=Counter)
    decisions_changed: int = 0
    api_usage: dict[str, UsageSummary] = field(default_factory=dict)
    error: str | None = None
    creation: CreationTally = field(default_factory=CreationTally)
    #: identity events: "<connector>.converted" / ".merged" (records followed to their
    #: successor) and ".duplicates" (records newly flagged as a duplicate, not written)
    identity: Counter[str] = field(default_factory=Counter)
    #: speed-to-lead SLA: breaches, reassigned, queued, recycled, requalified (run/sla.py)
    sla: Counter[str] = field(default_factory=Counter)

    def stats(self) -> dict[str, object]:
        return {"people": self.people, "stages": dict(self.stages),
                "owners_assigned": self.owners_assigned,
                "fields_written": dict(self.fields_written),
                "records_written": dict(self.records_written),
                "failures": dict(self.failures),
                **self.failure_stats(),
                "manual_edits_kept": dict(self.manual_edits_kept),
                "api_calls": dict(self.api_calls),
                "records_pulled": dict(self.records_pulled),
                "activities_pulled": dict(self.activities_pulled),
                "decisions_changed": self.decisions_changed,
                "created": dict(self.creation.created), "linked": dict(self.creation.linked),
                "create_failed": dict(self.creation.create_failed),
                "not_created_gate": dict(self.creation.gated),
                "identity": dict(self.identity), **usage_stats(self.api_usage),
                **({"sla": dict(self.sla)} if self.sla else {})}


def decision_changed(before: Decision | None, after: Decision) -> int:
    """1 when what syncer writes (stage, score, grade, owner) differs from before."""
    def written(d: Decision) -> tuple[object, ...]:
        return d.stage, d.score, d.fit_grade, d.owner_email
    return int(before is None or written(before) != written(after))
