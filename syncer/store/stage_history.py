"""Every lifecycle transition of every person, append-only: what the funnel report reads.

`transitions` is pure: given a person's previous and new decision it says which rows to
append and why (the `cause`). Rows are never edited or removed; a person who is recycled
and qualifies again gets a second MQL row, so re-entries stay countable. The one exception
is `carry`, which re-keys a person's rows when two people turn out to be one (a merge):
history must survive the merge under the surviving key.

Causes, derived from the decision's reasons (see syncer/qualify/lifecycle.py), first match
wins:

1. `disqualify` - a `lifecycle.disqualify.<id>` rule took the person out of the funnel;
2. `recycle` - one or more `lifecycle.recycle.<id>` rules moved the person back;
3. `hand_raise` / `scoring` - the new stage is the one the score alone earns (its
   `stage.<stage>` reason): `stage.sql` is only ever earned by a hand-raise;
4. `crm` - the new stage is not what scoring earns but is the stage a person set in a CRM
   (`crm_stage`): a rep moved the person to SAL, the CRM marked them customer, ...;
5. `lifecycle` - the stage was held at the profile's current stage, which came from
   neither scoring nor `crm_stage` (the caller knows better: pass `cause=`, e.g. "merge").

A caller that knows the cause outright (a model rollback, a merge) passes `cause=`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypedDict

from sqlalchemy import Connection, Row, select, update

from syncer.domain.types import Decision, Reason, Stage
from syncer.store import tables as t
from syncer.store.repository import Store

DISQUALIFY_PREFIX = "lifecycle.disqualify."
RECYCLE_PREFIX = "lifecycle.recycle."
STAGE_PREFIX = "stage."
#: Lifecycle reasons that say the stage was held at the profile's current stage.
HELD_RULES = ("lifecycle.sales_owned", "lifecycle.never_backwards",
              "lifecycle.disqualified_kept")


class StageRow(TypedDict):
    """A transition to append (`transitions` makes them; a merge writes its own)."""

    person_key: str
    from_stage: str | None
    to_stage: str
    at: datetime
    cause: str
    model_version: str
    run_id: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class StageChange:
    """One stored transition. `from_stage` is None for a person's first decision."""

    id: int
    person_key: str
    from_stage: Stage | None
    to_stage: Stage
    at: datetime
    cause: str
    model_version: str
    run_id: str
    detail: str | None


def transitions(previous: Decision | None, current: Decision, crm_stage: Stage | None,
                at: datetime, run_id: str, *, cause: str | None = None
                ) -> list[StageRow]:
    """The rows to append for one person in one run: none when the stage did not change,
    else one row from the previous decision's stage (None for a first decision) to the
    new one. `crm_stage` is the stage a person set in a CRM (not one syncer wrote), if
    any; `cause` overrides the derived cause (see the module docstring for the rules)."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware (UTC)")
    before = previous.stage if previous is not None else None
    if before is current.stage:
        return []
    derived, detail = cause_of(current, crm_stage)
    return [{"person_key": current.key, "from_stage": before.value if before else None,
             "to_stage": current.stage.value, "at": at, "cause": cause or derived,
             "model_version": current.model_version, "run_id": run_id, "detail": detail}]


def cause_of(decision: Decision, crm_stage: Stage | None) -> tuple[str, str]:
    """(cause, human detail) of the decision's stage; the rules are in the module
    docstring. The detail names the rule that decided, e.g. "lifecycle.recycle.stale_mql:
    MQL -> RECYCLED: no engagement for 90+ days (...)"."""
    stage = decision.stage
    reasons = decision.reasons
    if stage is Stage.DISQUALIFIED:
        hit = _first(reasons, DISQUALIFY_PREFIX)
        if hit is not None:
            return "disqualify", _text(hit)
    recycled = [r for r in reasons if r.rule_id.startswith(RECYCLE_PREFIX)]
    if recycled:
        return "recycle", "; ".join(_text(r) for r in recycled)
    earned = _first(reasons, STAGE_PREFIX)
    scored = _stage_of(earned)
    if earned is not None and scored is stage:
        return ("hand_raise" if stage is Stage.SQL else "scoring"), _text(earned)
    label = stage.value.upper()
    if crm_stage is stage:
        alone = f" (scoring alone: {scored.value.upper()})" if scored is not None else ""
        return "crm", f"{label} set in the CRM{alone}"
    held = next((r for r in reasons if r.rule_id in HELD_RULES), None)
    if held is not None:
        return "lifecycle", _text(held)
    return "scoring", _text(earned) if earned is not None else label


def _first(reasons: Sequence[Reason], prefix: str) -> Reason | None:
    return next((r for r in reasons if r.rule_id.startswith(prefix)), None)


def _stage_of(reason: Reason | None) -> Stage | None:
    if reason is None:
        return None
    try:
        return Stage(reason.rule_id.removeprefix(STAGE_PREFIX))
    except ValueError:
        return None


def _text(reason: Reason) -> str:
    return f"{reason.rule_id}: {reason.detail}"


# -- store ------------------------------------------------------------------------------
def append(connection: Connection, rows: Sequence[StageRow]) -> None:
    """Append rows (from `transitions`) in the caller's transaction, so the history and the
    decisions it describes commit together."""
    if rows:
        connection.execute(t.stage_history.insert(), list(rows))


def carry(connection: Connection, from_key: str, to_key: str) -> int:
    """Move every row of `from_key` to `to_key` (two people merged into one); returns the
    rows moved. Both histories then read as one person's, in time order: their stays
    interleave, and an entry into a stage the survivor was already in is not a new one."""
    if from_key == to_key:
        return 0
    result = connection.execute(update(t.stage_history)
                                .where(t.stage_history.c.person_key == from_key)
                                .values(person_key=to_key))
    return int(result.rowcount or 0)


def history(store: Store, person_key: str) -> list[StageChange]:
    """One person's transitions, oldest first (by time, then by the order appended)."""
    query = (select(*_CHANGE_COLUMNS).where(t.stage_history.c.person_key == person_key)
             .order_by(t.stage_history.c.at, t.stage_history.c.id))
    with store.engine.connect() as connection:
        return [_change(row) for row in connection.execute(query)]


def period_rows(store: Store, since: datetime | None, until: datetime) -> list[StageChange]:
    """What the funnel of [since, until) needs: every row before `until` of each person
    with a transition in the period (earlier rows too, to tell re-entries), ordered by
    person, time and id. Rows from `until` on are not read: the report of a past period
    gives the same figures tomorrow."""
    h = t.stage_history
    active = select(h.c.person_key).where(h.c.at < until)
    if since is not None:
        active = active.where(h.c.at >= since)
    query = (select(*_CHANGE_COLUMNS)
             .where(h.c.at < until, h.c.person_key.in_(active.distinct()))
             .order_by(h.c.person_key, h.c.at, h.c.id))
    with store.engine.connect() as connection:
        result = connection.execution_options(yield_per=2000).execute(query)
        return list(_changes(result))


def stages_used(store: Store) -> set[Stage]:
    """Every stage anyone ever entered: the funnel leaves out stages a CRM never uses
    (HubSpot has no SAL) instead of showing them as 0%."""
    query = select(t.stage_history.c.to_stage).distinct()
    with store.engine.connect() as connection:
        return {Stage(value) for value in connection.execute(query).scalars()}


#: the columns `_change` reads, in the order it unpacks them
_CHANGE_COLUMNS = (t.stage_history.c.id, t.stage_history.c.person_key,
                   t.stage_history.c.from_stage, t.stage_history.c.to_stage,
                   t.stage_history.c.at, t.stage_history.c.cause,
                   t.stage_history.c.model_version, t.stage_history.c.run_id,
                   t.stage_history.c.detail)
#: one row of `_CHANGE_COLUMNS`
ChangeRow = Row[int, str, str | None, str, datetime, str, str, str, str | None]


def _changes(rows: Iterable[ChangeRow]) -> Iterator[StageChange]:
    for row in rows:
        yield _change(row)


def _change(row: ChangeRow) -> StageChange:
    id_, person_key, from_stage, to_stage, at, cause, model_version, run_id, detail = row
    return StageChange(id=int(id_), person_key=person_key,
                       from_stage=Stage(from_stage) if from_stage else None,
                       to_stage=Stage(to_stage), at=_utc(at), cause=cause,
                       model_version=model_version, run_id=run_id, detail=detail)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def stages_before(store: Store, person_keys: Sequence[str], version: str
                  ) -> dict[str, Stage | None]:
    """Per person with history under model `version`: the stage they had before that
    version first moved them (None when it made their first decision). A rollback of
    `version` starts these people from there, so what it promoted is undone."""
    found: dict[str, Stage | None] = {}
    keys = list(person_keys)
    table = t.stage_history
    with store.engine.connect() as connection:
        for start in range(0, len(keys), 500):
            rows = connection.execute(
                select(table.c.person_key, table.c.from_stage).where(
                    table.c.person_key.in_(keys[start:start + 500]),
                    table.c.model_version == version).order_by(table.c.id))
            for key, from_stage in rows:
                if key not in found:
                    found[key] = Stage(from_stage) if from_stage else None
    return found
