"""History rows as the qualification core sees people: one Profile per row.

A backtest must score people exactly as a sync would, so every row becomes a
`syncer.domain.types.Profile` (one `Person` from the "history" source, its columns as
properties, mapped columns as activities) and goes through `qualify`, never through a
shortcut of our own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from syncer.domain.types import Activity, ActivityType, Person, Profile, PropertyValue
from syncer.qualify.learn.activity_columns import MAX_COUNT, activity_count_column
from syncer.qualify.learn.history import History, HistoryError, as_number, find_column
from syncer.qualify.learn.mapping import ColumnMap

#: Columns with these field names fill the Person attribute of that name.
STANDARD_FIELDS = ("title", "company", "industry", "employees", "country", "first_name",
                   "last_name")
SOURCE = "history"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One person of the history: what was known (`profile`), how it ended (`outcome`),
    the instant to score them at (`as_of`) and the key that orders rows in time."""

    id: str
    profile: Profile
    outcome: bool
    as_of: datetime
    time_key: float


@dataclass(frozen=True, slots=True)
class _Plan:
    """Per column: its index, the field it fills, the activity types its values stand
    for, and `alias`: the column's own field name when the mapping renamed it (holding
    the value as in the file), so a model learned from the file as is and one written in
    syncer's names score side by side on the same rows."""

    index: int
    header: str
    field: str
    activities: dict[str, ActivityType]
    alias: str | None = None


def _plans(history: History, mapping: ColumnMap) -> list[_Plan]:
    fields = {find_column(history.columns, c).header: f for c, f in mapping.columns.items()}
    acts = {find_column(history.columns, c).header: t for c, t in mapping.activities.items()}
    for name in mapping.values:
        find_column(history.columns, name)
    skip = {history.id_header, history.outcome_header, history.time_header or "",
            history.as_of_header or ""}
    plans: list[_Plan] = []
    taken: dict[str, str] = {}
    for index, column in enumerate(history.columns):
        if column.header in skip:
            continue
        name = fields.get(column.header, column.field)
        if name in taken:
            raise HistoryError(f"columns {taken[name]!r} and {column.header!r} both fill the "
                               f"field {name!r}. Fix: map only one of them to it")
        taken[name] = column.header
        plans.append(_Plan(index, column.header, name, dict(acts.get(column.header, {}))))
    own = {p.field for p in plans}
    return [_Plan(p.index, p.header, p.field, p.activities, alias)
            if (alias := history.columns[p.index].field) not in own
            and alias not in STANDARD_FIELDS and alias != "email" else p for p in plans]


def _recoders(history: History, mapping: ColumnMap) -> dict[str, dict[str, str]]:
    return {find_column(history.columns, c).header: dict(t) for c, t in mapping.values.items()}


def _value(text: str) -> PropertyValue:
    number = as_number(text)
    return number if number is not None else text


def history_rows(history: History, indices: Sequence[int],
                 mapping: ColumnMap | None = None) -> list[HistoryRow]:
    """The rows at `indices` as HistoryRows (HistoryError if the mapping names a column
    the file does not have)."""
    mapping = mapping or ColumnMap()
    plans = _plans(history, mapping)
    recode = _recoders(history, mapping)
    email_index = next((p.index for p in plans if p.field == "email"), None)
    out: list[HistoryRow] = []
    for i in indices:
        attributes: dict[str, object] = {}
        properties: dict[str, PropertyValue] = {}
        activities: list[Activity] = []
        for plan in plans:
            raw = history.columns[plan.index].cells[i]
            if raw is None:
                continue
            table = recode.get(plan.header)
            text = table.get(raw.lower(), raw) if table else raw
            kind = plan.activities.get(text.lower())
            if kind is not None:
                activities.append(Activity(SOURCE, f"{history.ids[i]}:{plan.index}",
                                           history.ids[i], kind, history.instants[i],
                                           {"column": plan.header, "value": text}))
            counted = activity_count_column(plan.field)
            if counted is not None:
                activities += _counted(history, i, plan, counted[0], text)
            elif plan.field in STANDARD_FIELDS:
                attributes[plan.field] = _standard(plan.field, text)
            elif plan.field != "email":
                properties[plan.field] = _value(text)
            if plan.alias is not None:
                properties[plan.alias] = _value(raw)   # as in the file, not recoded
        email = history.columns[email_index].cells[i] if email_index is not None else None
        person = Person(source=SOURCE, record_id=history.ids[i], object_type="history",
                        email=email, properties=properties, **attributes)  # type: ignore[arg-type]
        key = email or f"history:{history.ids[i]}"
        out.append(HistoryRow(history.ids[i], Profile(key, (person,), tuple(activities)),
                              history.outcomes[i], history.instants[i], history.times[i]))
    return out


def _counted(history: History, i: int, plan: _Plan, kind: ActivityType, text: str
             ) -> list[Activity]:
    """A count column's activities, at the row's instant (activity_columns.py)."""
    number = as_number(text)
    count = min(int(number), MAX_COUNT) if number is not None and number > 0 else 0
    return [Activity(SOURCE, f"{history.ids[i]}:{plan.index}:{n}", history.ids[i], kind,
                     history.instants[i], {"column": plan.header}) for n in range(count)]


def _standard(field: str, text: str) -> object:
    if field != "employees":
        return text
    number = as_number(text)
    return int(number) if number is not None else None
