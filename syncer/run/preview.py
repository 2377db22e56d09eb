"""Preview a model change: replay every stored profile through two models, write nothing.

`syncer model diff OLD.yaml NEW.yaml` answers the question an admin has before publishing a
new model: who would change stage, in which direction, how many MQLs and SQLs there would
be, and why, for a sample of the people who change. Both models see exactly the same
profiles at the same instant, built the way a sync builds them (records merged in the
config's connector order; the current stage is the furthest of the stored decision and the
stages the CRMs held at the last pull), so the difference is the model's alone.

Read-only by construction, not by care: the state database is opened without migrating,
and every connection is made read-only at the database level (SQLite `PRAGMA query_only`,
PostgreSQL `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`), so even a bug here
could not change the state.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from syncer.domain.config import LoadedConfig
from syncer.domain.failures import BadInput
from syncer.domain.identity import merge_order
from syncer.domain.types import Decision, Person, Profile, Reason, Stage
from syncer.qualify import Model, qualify
from syncer.run.diff import stage_from_crm
from syncer.store import read_only
from syncer.store.repository import Store

CHUNK = 500
#: Reasons listed per changed person in the sample (the largest differences first).
REASONS_PER_PERSON = 6


class PreviewError(BadInput, RuntimeError):
    """The preview cannot run (no state yet, a state from another syncer version...)."""


@dataclass(frozen=True)
class Change:
    """One person whose stage differs between the two models."""

    key: str
    old: Decision
    new: Decision

    @property
    def up(self) -> bool:
        return self.new.stage.rank > self.old.stage.rank


@dataclass
class ModelDiff:
    """What publishing `new` instead of `old` would change, at `now`."""

    old_version: str
    new_version: str
    now: datetime
    people: int = 0
    old_stages: Counter[Stage] = field(default_factory=Counter)
    new_stages: Counter[Stage] = field(default_factory=Counter)
    #: (old stage, new stage) -> people, for people whose stage changes
    transitions: Counter[tuple[Stage, Stage]] = field(default_factory=Counter)
    score_changes: int = 0
    grade_changes: int = 0
    sample: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(self.transitions.values())

    @property
    def moved_up(self) -> int:
        return sum(n for (a, b), n in self.transitions.items() if b.rank > a.rank)


# ---------------------------------------------------------------- opening the state


def open_read_only(url: str) -> Store:
    """The state database at `url`, read-only, at this syncer's schema version
    (syncer/store/read_only.py); PreviewError when it cannot be read as it is."""
    try:
        return read_only.open_read_only(url)
    except read_only.StateUnreadable as error:
        raise PreviewError(str(error)) from None


# ---------------------------------------------------------------- replay


def current_stage(loaded: LoadedConfig, previous: Decision | None,
                  records: Sequence[Person]) -> Stage | None:
    """The furthest of the stored decision's stage and the stages the CRMs held at the last
    pull, as the pipeline computes it."""
    stages = [previous.stage] if previous is not None else []
    names = {c.name for c in loaded.config.connectors}
    for record in records:
        if record.source in names:
            stage = stage_from_crm(loaded.connector(record.source), record)
            if stage is not None:
                stages.append(stage)
    return max(stages, key=lambda s: s.rank) if stages else None


def profiles(store: Store, loaded: LoadedConfig) -> Iterator[Profile]:
    """Every stored person as a Profile, in key order, a chunk of people at a time."""
    order = [c.name for c in loaded.config.connectors]
    keys = store.person_keys()
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        people = store.load_people(chunk)
        previous = store.decisions(chunk)
        for key in chunk:
            stored, activities = people[key]
            if not stored:
                continue
            records = merge_order(stored, order)
            yield Profile(key=key, records=tuple(records), activities=tuple(activities),
                          current_stage=current_stage(loaded, previous.get(key), records),
                          owner_email=None)


def diff_models(store: Store, loaded: LoadedConfig, old: Model, new: Model, now: datetime,
                sample: int = 10) -> ModelDiff:
    """Replay every stored profile through both models at `now`. Reads only."""
    result = ModelDiff(old.version, new.version, now)
    changes: dict[tuple[Stage, Stage], list[Change]] = {}
    for profile in profiles(store, loaded):
        before, after = qualify(profile, old, now), qualify(profile, new, now)
        result.people += 1
        result.old_stages[before.stage] += 1
        result.new_stages[after.stage] += 1
        result.score_changes += before.score != after.score
        result.grade_changes += before.fit_grade != after.fit_grade
        if before.stage is not after.stage:
            pair = (before.stage, after.stage)
            result.transitions[pair] += 1
            if len(changes.setdefault(pair, [])) < sample:
                changes[pair].append(Change(profile.key, before, after))
    result.sample = _spread(changes, sample)
    return result


def _spread(changes: dict[tuple[Stage, Stage], list[Change]], size: int) -> list[Change]:
    """Up to `size` changes taking turns across transitions (largest first), so a sample of
    10 shows every kind of change rather than 10 of the most common one."""
    groups = sorted(changes.items(), key=lambda kv: (-len(kv[1]), kv[0][0].rank,
                                                     kv[0][1].rank))
    picked = [c for turn in itertools.zip_longest(*(g for _, g in groups)) for c in turn
              if c is not None]
    return picked[:size]


# ---------------------------------------------------------------- explaining a change


def reason_changes(change: Change, limit: int = REASONS_PER_PERSON) -> list[str]:
    """The reasons that made the difference: rules whose points differ between the two
    decisions (largest difference first), then the new stage and lifecycle reasons."""
    old = _points_by_rule(change.old.reasons)
    new = _points_by_rule(change.new.reasons)
    detail = {r.rule_id: r.detail for r in (*change.old.reasons, *change.new.reasons)
              if r.points != 0.0}
    detail.update({r.rule_id: r.detail for r in change.new.reasons if r.points != 0.0})
    moved = [(rule, old.get(rule), new.get(rule)) for rule in sorted({*old, *new})
             if not math.isclose(old.get(rule, 0.0), new.get(rule, 0.0), abs_tol=0.005)]
    moved.sort(key=lambda m: (-abs((m[2] or 0.0) - (m[1] or 0.0)), m[0]))
    lines = [f"{rule}: {_pts(a)} -> {_pts(b)} ({detail[rule]})" for rule, a, b in moved]
    old_stage = {r.rule_id: r.detail for r in change.old.reasons
                 if r.rule_id.startswith(("stage.", "lifecycle."))}
    for reason in change.new.reasons:
        if reason.rule_id.startswith(("stage.", "lifecycle.")) and \
                old_stage.get(reason.rule_id) != reason.detail:
            lines.append(f"{reason.rule_id}: {reason.detail}")
    if len(lines) > limit:
        lines = [*lines[:limit - 1], f"... and {len(lines) - limit + 1} more"]
    return lines


def _points_by_rule(reasons: Sequence[Reason]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for reason in reasons:
        if reason.points != 0.0:
            totals[reason.rule_id] = totals.get(reason.rule_id, 0.0) + reason.points
    return totals


def _pts(points: float | None) -> str:
    return "-" if points is None else f"{points:+.1f}"


# ---------------------------------------------------------------- the report


def format_diff(result: ModelDiff) -> list[str]:
    """The report `syncer model diff` prints."""
    lines = [f"model diff {result.old_version} -> {result.new_version} "
             f"(replayed at {result.now:%Y-%m-%d %H:%M}Z)",
             f"people compared: {result.people}; stage changes: {result.changed} "
             f"({result.moved_up} up, {result.changed - result.moved_up} down); score "
             f"changes: {result.score_changes}; fit grade changes: {result.grade_changes}",
             "", f"  {'stage':<13}{'old':>7}{'new':>7}{'change':>8}"]
    for stage in Stage:
        before, after = result.old_stages[stage], result.new_stages[stage]
        if before or after:
            lines.append(f"  {stage.value:<13}{before:>7}{after:>7}{after - before:>+8}")
    lines += ["", f"MQL: {result.old_stages[Stage.MQL]} -> {result.new_stages[Stage.MQL]}; "
                  f"SQL: {result.old_stages[Stage.SQL]} -> {result.new_stages[Stage.SQL]}"]
    if result.transitions:
        lines += ["", "stage changes (old -> new):"]
        for (a, b), n in sorted(result.transitions.items(),
                                key=lambda kv: (-kv[1], kv[0][0].rank, kv[0][1].rank)):
            direction = "up" if b.rank > a.rank else "down"
            lines.append(f"  {direction:<5}{a.value} -> {b.value}: {n}")
    if result.sample:
        lines += ["", f"sample of changed people ({len(result.sample)} of {result.changed}):"]
        for change in result.sample:
            lines.append(f"  {change.key}: {change.old.stage.value} -> "
                         f"{change.new.stage.value}, score {change.old.score} -> "
                         f"{change.new.score}, grade {change.old.fit_grade} -> "
                         f"{change.new.fit_grade}")
            lines += [f"      {line}" for line in reason_changes(change)]
    else:
        lines += ["", "no one changes stage."]
    return lines
