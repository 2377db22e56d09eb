"""The speed-to-lead SLA within a run: after routing, each decided MQL is checked against
its owner's SLA (syncer/qualify/sla.py decides; this stage applies and records).

What a verdict leaves behind, all in the run's decision transaction (rows handed to the
Decider's `new_assignments`, which the pipeline stores with the decisions):
- reassign / queue: an `assignments` row (rule `sla_reassign` / `sla_queue`, the reason
  naming the SLA, the old and the new owner); the decision carries the new owner, so the
  normal diff and push write the owner field to every CRM the person lives in, audited
  with that reason (syncer/run/audit_trail.py); the new owner's daily count and the
  team's rotation move as for any routing;
- recycle: an `sla_recycle` row (counted toward no cap) and the decision's stage back to
  nurture with a `lifecycle.recycle.sla` reason, which the stage history records as a
  recycle; the person stays there until they do something new (`sla_requalified` row);
- every breach (reassign, queue or recycle) is counted (`counts`) for the run's stats and
  /metrics, and alerted by syncer/ops/alerts.py from the rows.

`SlaReview.due_keys` names the people whose SLA runs out between two runs, so an incremental run
re-decides them although nothing about them changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import MutableMapping
from datetime import datetime, timedelta

import structlog

from syncer.domain.types import Decision, Profile
from syncer.qualify.routing import RoutingState
from syncer.qualify.routing_model import Routing
from syncer.qualify.sla import Mark, Verdict, episode_of, review
from syncer.store import routing as routing_store
from syncer.store.repository import Store

log = structlog.get_logger(__name__)

#: run stats key of the SLA counts
STATS_KEY = "sla"


#: assignments read per look-ahead while a run decides people in ascending key order
PAGE = 2000


def _grouped(rows: list[routing_store.MarkRow]) -> dict[str, list[Mark]]:
    found: dict[str, list[Mark]] = {}
    for key, owner, rule, team, at in rows:
        found.setdefault(key, []).append(Mark(owner, rule, team, at))
    return found


class SlaReview:
    """Applies the SLA to the people of one run, in the Decider's order."""

    def __init__(self, store: Store, routing: Routing, now: datetime, run_id: str) -> None:
        self.store = store
        self.routing = routing
        self.now = now
        self.run_id = run_id
        #: the assignments of people from `_first` up to (not including) `_until` (None:
        #: to the end), read ahead in key order, so that a run of any size reads each row
        #: once and a run of a few people (a webhook's) reads a page, not the table
        self._marks: dict[str, list[Mark]] = {}
        self._first: str | None = None
        self._until: str | None = None
        #: breaches, reassigned, queued, recycled, requalified: this run's counts
        self.counts: Counter[str] = Counter()

    def apply(self, decision: Decision, profile: Profile, state: RoutingState,
              new_rows: list[dict[str, object]], positions: MutableMapping[str, int],
              assigned_today: Counter[str]) -> Decision:
        """The decision after the SLA; rows to store go to `new_rows`, and a reassignment
        moves `positions` and `assigned_today` as routing would."""
        marks = self.marks_of(decision.key)
        # routing's row for this person, if it made one, is the one it has just added
        marks += [Mark(str(row["owner_email"]), str(row["rule"]),
                       row["team"] if isinstance(row["team"], str) else None, self.now)
                  for row in new_rows[-1:] if row["person_key"] == decision.key]
        verdict = review(decision, profile, marks, self.routing, state, self.now)
        if verdict.rule is not None and verdict.owner is not None:
            new_rows.append(self._row(verdict, marks))
            self._count(verdict)
            routed = verdict.routed
            if routed is not None and routed.team is not None \
                    and routed.new_position is not None:
                positions[routed.team] = routed.new_position
            if verdict.action in ("reassign", "queue", "requalified"):
                assigned_today[verdict.owner] += 1
        return verdict.decision

    def marks_of(self, key: str) -> list[Mark]:
        """The person's stored assignments, in the order made."""
        if self._first is None or not (self._first <= key and
                                       (self._until is None or key < self._until)):
            rows = routing_store.marks_from(self.store, key, PAGE)
            grouped = _grouped(rows)
            self._first, self._until = key, None
            if len(rows) == PAGE:  # the last person may go on in the next page
                self._until = rows[-1][0]
                grouped.pop(self._until)
                if key == self._until:  # one person with a page of rows of their own
                    grouped = _grouped(routing_store.marks_of(self.store, key))
                    self._until = key + "\0"
            self._marks = grouped
        return list(self._marks.get(key, ()))

    def due_keys(self, window: timedelta = timedelta(days=1)) -> list[str]:
        """People whose SLA (work_within of their current owner, or recycle_after) ran out
        in (now - window, now]: an incremental run decides them although nothing about
        them changed. The day's first run decides everyone anyway, so a day's window
        misses no one."""
        sla = self.routing.sla
        assert sla is not None
        longest = max([sla.work_within, *(t.work_within for t in
                                          (*sla.teams.values(), *sla.owners.values())
                                          if t.work_within is not None)])
        reach = max(longest, sla.recycle_after or longest)
        due: list[str] = []
        recent = routing_store.marks_since(self.store, self.now - window - reach)
        for key, marks in _grouped(recent).items():
            episode = episode_of(marks)
            if episode is None:
                continue
            within, _, _ = sla.terms(episode.owner, episode.team)
            moments = [episode.owner_since + within]
            if sla.recycle_after is not None:
                moments.append(episode.started_at + sla.recycle_after)
            if any(self.now - window < moment <= self.now for moment in moments):
                due.append(key)
        return sorted(due)

    def _row(self, verdict: Verdict, marks: list[Mark]) -> dict[str, object]:
        decision = verdict.decision
        episode = episode_of(marks)
        reason = next((r.detail for r in reversed(decision.reasons)
                       if r.rule_id.startswith(("routing.sla", "lifecycle.recycle.sla"))),
                      f"SLA: {verdict.action}")
        return {"person_key": decision.key, "owner_email": verdict.owner,
                "team": verdict.team, "rule": verdict.rule, "reason": reason,
                "stage": decision.stage.value,
                "qualified_at": episode.started_at if episode is not None else self.now,
                "assigned_at": self.now, "owner_written_at": None, "run_id": self.run_id}

    def _count(self, verdict: Verdict) -> None:
        action = verdict.action
        if action in ("reassign", "queue", "recycle"):
            self.counts["breaches"] += 1
        self.counts[{"reassign": "reassigned", "queue": "queued", "recycle": "recycled",
                     "requalified": "requalified"}[action]] += 1
        log.info("sla." + action, person=verdict.decision.key, owner=verdict.owner,
                 previous_owner=verdict.breached_owner)
