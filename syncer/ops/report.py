"""KPIs from the assignments: speed to lead per team and MQL -> SQL per owner.

Pure functions over rows the store hands out, so the figures can be checked by hand.
Speed to lead is measured from the moment a person qualified (their hand-raise or the
latest activity that counted toward the decision) to the moment their owner was written
into a CRM: it includes the sync's own delay, which is what a prospect waits for. This is
the one definition `syncer report` uses; the stage history's MQL row is later (the sync
that noticed the qualification), so it would hide that delay. A report for a period
counts the assignments of people who qualified in it (`in_period`).

Rows the speed-to-lead SLA wrote (rule `sla_*`: syncer/qualify/sla.py) are not first
responses and stay out of speed to lead; a reassignment or a hand-over to the queue counts
as assigned to the new owner, and as an SLA breach of the owner before (a recycle counts
only as a breach). The breaches column shows once any owner has one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncer.domain.json_values import JSONObject
from syncer.domain.types import Stage
from syncer.store.routing import AssignmentRow

#: The label of the all-teams speed-to-lead line.
ALL_TEAMS = "(all teams)"
#: assignments rows of the SLA: a breach of the owner before; not a first response
SLA_BREACH_RULES = frozenset({"sla_reassign", "sla_queue", "sla_recycle"})
SLA_RULES = SLA_BREACH_RULES | {"sla_requalified"}


@dataclass(frozen=True)
class SpeedToLead:
    team: str
    people: int
    median: timedelta
    p90: timedelta


@dataclass(frozen=True)
class OwnerFunnel:
    owner: str
    assigned: int
    mqls: int
    now_sql_or_later: int
    #: people this owner did not work within the speed-to-lead SLA
    sla_breaches: int = 0

    @property
    def mql_to_sql(self) -> float | None:
        return self.now_sql_or_later / self.mqls if self.mqls else None


def percentile(sorted_values: Sequence[timedelta], fraction: float) -> timedelta:
    """Nearest-rank percentile: the smallest value with at least `fraction` of values at or
    below it (the median of [1, 2, 3, 4] is 2)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def in_period(rows: Iterable[AssignmentRow], since: datetime | None,
              until: datetime | None) -> list[AssignmentRow]:
    """The assignments of people who qualified in [since, until) (None: unbounded)."""
    return [row for row in rows
            if (since is None or row["qualified_at"] >= since)
            and (until is None or row["qualified_at"] < until)]


def team_label(row: AssignmentRow) -> str:
    return str(row["team"] or row["rule"])


def speed_to_lead(rows: Iterable[AssignmentRow]) -> list[SpeedToLead]:
    """Per team (or rule, for account matches and single-rep territories)."""
    waits: dict[str, list[timedelta]] = defaultdict(list)
    for row in rows:
        if row["owner_written_at"] is not None and row["rule"] not in SLA_RULES:
            waits[team_label(row)].append(row["owner_written_at"] - row["qualified_at"])
    out = []
    for team, values in sorted(waits.items()):
        values.sort()
        out.append(SpeedToLead(team, len(values), percentile(values, 0.5),
                               percentile(values, 0.9)))
    return out


def overall_speed(rows: Iterable[AssignmentRow]) -> SpeedToLead | None:
    """Speed to lead over every team at once (None before any owner was written)."""
    waits = sorted(row["owner_written_at"] - row["qualified_at"] for row in rows
                   if row["owner_written_at"] is not None and row["rule"] not in SLA_RULES)
    if not waits:
        return None
    return SpeedToLead(ALL_TEAMS, len(waits), percentile(waits, 0.5), percentile(waits, 0.9))


def owner_funnel(rows: Iterable[AssignmentRow],
                 current_stage: Mapping[str, Stage]) -> list[OwnerFunnel]:
    """Per owner: people assigned, how many were assigned as MQLs, and how many of those
    are now SQL or further (the MQL -> SQL ratio). Hand-raisers routed straight at SQL count
    as assigned but not as MQLs."""
    assigned: dict[str, int] = defaultdict(int)
    mqls: dict[str, int] = defaultdict(int)
    converted: dict[str, int] = defaultdict(int)
    breaches: dict[str, int] = defaultdict(int)
    last_owner: dict[str, str] = {}
    for row in rows:
        owner = str(row["owner_email"])
        person = str(row["person_key"])
        if row["rule"] in SLA_BREACH_RULES:
            breaches[last_owner.get(person, owner)] += 1
        last_owner[person] = owner
        if row["rule"] == "sla_recycle":
            continue
        assigned[owner] += 1
        if row["stage"] == Stage.MQL.value:
            mqls[owner] += 1
            stage = current_stage.get(str(row["person_key"]))
            if stage is not None and stage.rank >= Stage.SQL.rank:
                converted[owner] += 1
    return [OwnerFunnel(owner, assigned[owner], mqls[owner], converted[owner],
                        breaches[owner])
            for owner in sorted(set(assigned) | set(breaches))]


def duration_text(value: timedelta) -> str:
    """45m00s under an hour, 5h30m under two days, else 3.2d."""
    seconds = int(value.total_seconds())
    if abs(seconds) < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if abs(seconds) < 86_400 * 2:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds / 86_400:.1f}d"


def format_report(speed: Sequence[SpeedToLead], funnel: Sequence[OwnerFunnel],
                  overall: SpeedToLead | None = None) -> str:
    """The speed-to-lead and owner sections of `syncer report`; `overall` adds an
    all-teams line when there is more than one team."""
    lines = ["Speed to lead (qualified -> owner written in the CRM)",
             f"  {'team':<28} {'people':>7} {'median':>10} {'p90':>10}"]
    shown = [*speed, overall] if overall is not None and len(speed) > 1 else list(speed)
    lines += [f"  {s.team:<28} {s.people:>7} {duration_text(s.median):>10} "
              f"{duration_text(s.p90):>10}" for s in shown] or ["  (no owner written yet)"]
    sla = any(f.sla_breaches for f in funnel)
    lines += ["", "Owners", f"  {'owner':<40} {'assigned':>8} {'MQLs':>6} {'now SQL+':>8} "
                            f"{'MQL->SQL':>9}" + (f" {'SLA missed':>10}" if sla else "")]
    for f in funnel:
        ratio = f"{f.mql_to_sql:.0%}" if f.mql_to_sql is not None else "-"
        lines.append(f"  {f.owner:<40} {f.assigned:>8} {f.mqls:>6} {f.now_sql_or_later:>8} "
                     f"{ratio:>9}" + (f" {f.sla_breaches:>10}" if sla else ""))
    if not funnel:
        lines.append("  (no assignments yet)")
    return "\n".join(lines)


def speed_json(speed: Sequence[SpeedToLead], overall: SpeedToLead | None
               ) -> list[JSONObject]:
    """Speed to lead per team, then all teams (when any), durations in seconds."""
    return [{"team": s.team, "people": s.people, "median_seconds": s.median.total_seconds(),
             "p90_seconds": s.p90.total_seconds()}
            for s in [*speed, *([overall] if overall is not None else [])]]


def owners_json(funnel: Sequence[OwnerFunnel]) -> list[JSONObject]:
    """Per owner; `sla_breaches` on every owner once any has one (an SLA is in use)."""
    sla = any(f.sla_breaches for f in funnel)
    return [{"owner": f.owner, "assigned": f.assigned, "mqls": f.mqls,
             "now_sql_or_later": f.now_sql_or_later, "mql_to_sql": f.mql_to_sql,
             **({"sla_breaches": f.sla_breaches} if sla else {})}
            for f in funnel]
