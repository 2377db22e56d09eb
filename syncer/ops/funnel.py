"""The lifecycle funnel of a period, from the stage history: MQL -> SAL -> SQL ->
opportunity -> customer conversion, time in each stage and re-entries.

Pure functions over StageChange rows (see syncer/store/stage_history.py), so every figure
can be checked by hand. The definitions, which `syncer report` repeats:

- an **entry** into a stage is a history row moving a person into it from another stage
  (a row into the stage the person is already in, as after two histories were merged, is
  not a new entry); a **re-entry** is an entry into a stage the person entered before;
- the **cohort** is the MQL entries in [since, until). Each entry counts on its own (a
  person recycled and qualified again twice in the period is two entries); the distinct
  people are counted too. An MQL entry **reached** a later stage when, after it and before
  the person's next MQL entry, the person entered that stage *or one after it* (a HubSpot
  person going MQL -> SQL has passed SAL), before `until`;
- a stage nobody has ever entered (HubSpot has no SAL) is **not used**: it is shown as such
  and the next stage's step ratio is taken over the previous used stage;
- **time in stage** covers the stays that began in the period, from the entry to the
  person's next entry into any stage. Stays still open at `until` are left out of the
  median and p90 (they have no length yet) and counted as `open` next to them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import groupby

from syncer.domain.json_values import JSONObject
from syncer.domain.types import Stage
from syncer.ops.report import duration_text, percentile
from syncer.store.stage_history import StageChange

#: The funnel, in order: the cohort stage first.
FUNNEL: tuple[Stage, ...] = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY,
                             Stage.CUSTOMER)
AFTER_MQL: tuple[Stage, ...] = FUNNEL[1:]


@dataclass(frozen=True)
class Step:
    """How many of the period's MQL entries (and distinct people) reached `stage` or a
    later one. Ratios are None when there is nothing to divide by or the stage is unused."""

    stage: Stage
    used: bool
    entries: int
    people: int
    of_mql: float | None
    of_mql_people: float | None
    #: over the previous used stage (MQL for the first): the step's own conversion
    from_previous: float | None


@dataclass(frozen=True)
class StageTime:
    """Entries into one stage in the period and how long those stays lasted."""

    stage: Stage
    entries: int
    re_entries: int
    closed: int
    open: int
    median: timedelta | None
    p90: timedelta | None


@dataclass(frozen=True)
class Funnel:
    since: datetime | None
    until: datetime
    mql_entries: int
    mql_people: int
    steps: tuple[Step, ...]
    times: tuple[StageTime, ...]
    #: entries into SAL or later in the period straight from below MQL (a hand-raise goes
    #: straight to SQL; a rep may create an opportunity): outside the MQL cohort
    bypassed_mql: int


@dataclass
class _Tally:
    entries: int = 0
    re_entries: int = 0
    open: int = 0


def funnel(rows: Iterable[StageChange], since: datetime | None, until: datetime,
           used: set[Stage] | None = None) -> Funnel:
    """The funnel of [since, until) from `rows`: each person's rows before `until`, in
    order of (person, at, id), as stage_history.period_rows reads them. `used`: the stages
    anyone ever entered (default: those entered in `rows`)."""
    rows = [row for row in rows if row.at < until]
    if used is None:
        used = {row.to_stage for row in rows}
    tallies: dict[Stage, _Tally] = defaultdict(_Tally)
    stays: dict[Stage, list[timedelta]] = defaultdict(list)
    cohort: list[int] = []  # per MQL entry: the furthest rank it reached (0: none)
    people_best: dict[str, int] = {}
    bypassed = 0
    for key, group in groupby(rows, key=lambda row: row.person_key):
        entries = _entries(list(group))
        seen: set[Stage] = set()
        for index, (stage, at) in enumerate(entries):
            if since is None or at >= since:
                tally = tallies[stage]
                tally.entries += 1
                tally.re_entries += stage in seen
                if index + 1 < len(entries):
                    stays[stage].append(entries[index + 1][1] - at)
                else:
                    tally.open += 1
                before = entries[index - 1][0] if index else None
                if stage in AFTER_MQL and (before is None or before.rank < Stage.MQL.rank):
                    bypassed += 1
                if stage is Stage.MQL:
                    best = _furthest(entries[index + 1:])
                    cohort.append(best)
                    people_best[key] = max(best, people_best.get(key, 0))
            seen.add(stage)
    steps = _steps(cohort, list(people_best.values()), used)
    times = tuple(_time(stage, tallies[stage], stays[stage]) for stage in FUNNEL
                  if stage in used)
    return Funnel(since, until, len(cohort), len(people_best), steps, times, bypassed)


def _entries(rows: Sequence[StageChange]) -> list[tuple[Stage, datetime]]:
    """(stage, at) of each real entry: rows into the stage the person is already in
    (two merged histories) are skipped."""
    out: list[tuple[Stage, datetime]] = []
    for row in rows:
        if not out or out[-1][0] is not row.to_stage:
            out.append((row.to_stage, row.at))
    return out


def _furthest(after: Sequence[tuple[Stage, datetime]]) -> int:
    """The highest rank of a stage after MQL entered before the next MQL entry (0: none)."""
    best = 0
    for stage, _ in after:
        if stage is Stage.MQL:
            break
        if stage in AFTER_MQL:
            best = max(best, stage.rank)
    return best


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _steps(cohort: Sequence[int], people: Sequence[int], used: set[Stage]
           ) -> tuple[Step, ...]:
    steps: list[Step] = []
    previous = len(cohort)
    for stage in AFTER_MQL:
        if stage not in used:
            steps.append(Step(stage, False, 0, 0, None, None, None))
            continue
        reached = sum(1 for best in cohort if best >= stage.rank)
        reached_people = sum(1 for best in people if best >= stage.rank)
        steps.append(Step(stage, True, reached, reached_people, _ratio(reached, len(cohort)),
                          _ratio(reached_people, len(people)), _ratio(reached, previous)))
        previous = reached
    return tuple(steps)


def _time(stage: Stage, tally: _Tally, stays: list[timedelta]) -> StageTime:
    stays.sort()
    if not stays:
        return StageTime(stage, tally.entries, tally.re_entries, 0, tally.open, None, None)
    return StageTime(stage, tally.entries, tally.re_entries, len(stays), tally.open,
                     percentile(stays, 0.5), percentile(stays, 0.9))


# -- presentation ----------------------------------------------------------------------
def period_text(since: datetime | None, until: datetime) -> str:
    def utc(value: datetime) -> str:
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%MZ")

    return f"{utc(since) if since is not None else 'the beginning'} -> {utc(until)}"


def _percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


def _when(value: timedelta | None) -> str:
    return duration_text(value) if value is not None else "-"


def format_funnel(result: Funnel) -> str:
    """The funnel and time-in-stage sections of `syncer report`."""
    mql = next((t for t in result.times if t.stage is Stage.MQL), None)
    lines = [f"Funnel of {period_text(result.since, result.until)} (from the stage history)",
             f"  MQL entries: {result.mql_entries} ({result.mql_people} people, "
             f"{mql.re_entries if mql else 0} re-entries)"]
    if result.mql_entries == 0:
        lines.append("  (no one entered MQL in the period)")
    else:
        lines += ["  reached (this stage or later, before the next MQL entry):",
                  f"  {'stage':<12} {'entries':>8} {'of MQL':>7} {'step':>6} "
                  f"{'people':>7} {'of people':>10}"]
        for step in result.steps:
            name = step.stage.value.upper()
            if not step.used:
                lines.append(f"  {name:<12} not used (no one has ever entered it)")
                continue
            lines.append(f"  {name:<12} {step.entries:>8} {_percent(step.of_mql):>7} "
                         f"{_percent(step.from_previous):>6} {step.people:>7} "
                         f"{_percent(step.of_mql_people):>10}")
        lines += ["  entries: each MQL entry counts, re-entries again; people: each person "
                  "once;", "  step: over the stage above it in this table"]
    if result.bypassed_mql:
        lines.append(f"  entered SAL or later without being MQL (hand-raises, sales): "
                     f"{result.bypassed_mql}")
    lines += ["", "Time in stage (stays begun in the period; open stays are not in the "
                  "median or p90)",
              f"  {'stage':<12} {'entries':>8} {'re-entries':>10} {'left':>6} {'open':>6} "
              f"{'median':>9} {'p90':>9}"]
    for time in result.times:
        lines.append(f"  {time.stage.value.upper():<12} {time.entries:>8} "
                     f"{time.re_entries:>10} {time.closed:>6} {time.open:>6} "
                     f"{_when(time.median):>9} {_when(time.p90):>9}")
    if not result.times:
        lines.append("  (no stage history yet)")
    return "\n".join(lines)


def funnel_json(result: Funnel) -> JSONObject:
    """The funnel as plain data (durations in seconds; unused stages have null counts)."""
    def seconds(value: timedelta | None) -> float | None:
        return value.total_seconds() if value is not None else None

    return {
        "counted": "per MQL entry (re-entries count again); *_people: each person once",
        "mql_entries": result.mql_entries, "mql_people": result.mql_people,
        "bypassed_mql": result.bypassed_mql,
        "steps": [{"stage": s.stage.value, "used": s.used,
                   "entries": s.entries if s.used else None,
                   "people": s.people if s.used else None, "of_mql": s.of_mql,
                   "of_mql_people": s.of_mql_people, "from_previous": s.from_previous}
                  for s in result.steps],
        "time_in_stage": [{"stage": t.stage.value, "entries": t.entries,
                           "re_entries": t.re_entries, "left": t.closed, "open": t.open,
                           "median_seconds": seconds(t.median),
                           "p90_seconds": seconds(t.p90)} for t in result.times],
    }
