"""History to learn from, out of the state store: one row per person, with whether they
bought and what syncer knew about them before they did.

`syncer model calibrate` and `backtest` learn from rows of (id, profile, outcome, as_of).
A history CSV gives them directly; this module builds them from the connected CRMs as
syncer has stored them after its syncs, so the loop runs on your own data:

- outcome: the person reached opportunity or customer (a stage history row into either,
  a CRM stage field that maps to either under the connector's `stage_values`, a date the
  CRM keeps of entering either, or a Salesforce lead conversion);
- as_of: when the first outcome happened (the CRM's own date where it keeps one: HubSpot's
  hs_lifecyclestage_opportunity_date / _customer_date, Salesforce's conversion time;
  else when syncer first saw the stage); for everyone else, their latest pull;
- the profile holds the person's records and only the activities before as_of: features
  as they stood before the outcome, never after. The records' `crm_values` (the stage
  and the scores syncer wrote) are left out, and so is `current_stage`: they are the
  outcome and the old model's verdict, not evidence.

Limits: the store keeps the current value of each person field, not its past values, so a
field that changed after the outcome (a visit count HubSpot keeps adding to) is as last
pulled; and an outcome the CRM does not date, seen on syncer's first sync, is dated at
that sync (a Salesforce stage field, a conversion from before syncer's first pull).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from syncer.domain.config import LoadedConfig
from syncer.domain.types import Activity, ActivityType, Person, Profile, PropertyValue
from syncer.run.diff import stage_from_crm
from syncer.store.outcome_rows import OUTCOME_STAGES, OutcomeFacts, outcome_facts
from syncer.store.repository import Store

#: Person fields every row has, in CSV column order (after id, outcome, as_of).
STANDARD_FIELDS: tuple[str, ...] = ("email", "first_name", "last_name", "title", "company",
                                    "industry", "employees", "country")
#: Person fields that date the outcome (HubSpot's hs_lifecyclestage_*_date, mapped by
#: default): they set as_of when earlier than what the store saw, and are never features.
OUTCOME_DATE_FIELDS: tuple[str, ...] = ("opportunity_at", "customer_at")
#: The window of the per-activity-type counts in the CSV.
ACTIVITY_WINDOW = timedelta(days=90)
_BATCH = 500


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One person: `id` is syncer's person key; `profile` holds only activities before
    `as_of`; `outcome` is whether they reached opportunity or customer (at `as_of`)."""

    id: str
    profile: Profile
    outcome: bool
    as_of: datetime


def history_rows(store: Store, loaded: LoadedConfig | None = None) -> Iterator[HistoryRow]:
    """Every person the store has records for, in person-key order, a batch at a time.

    With `loaded`, a record whose CRM stage field maps (`stage_values`) to opportunity or
    customer counts as an outcome too, dated at the person's latest pull when no stage
    history dates it earlier. People never pulled (no pull time) are left out."""
    facts = outcome_facts(store)
    keys = sorted(facts)
    for start in range(0, len(keys), _BATCH):
        chunk = keys[start:start + _BATCH]
        loaded_people = store.load_people(chunk)
        for key in chunk:
            records, activities = loaded_people[key]
            row = _row(facts[key], records, activities, loaded)
            if row is not None:
                yield row


def _row(facts: OutcomeFacts, records: Sequence[Person], activities: Sequence[Activity],
         loaded: LoadedConfig | None) -> HistoryRow | None:
    as_of = _earliest(facts.outcome_at, _crm_dated(records))
    if as_of is None and loaded is not None and _crm_outcome(records, loaded):
        as_of = facts.last_pulled_at
    outcome = as_of is not None
    as_of = as_of or facts.last_pulled_at
    if as_of is None:
        return None
    before = tuple(a for a in activities if a.occurred_at < as_of)
    profile = Profile(key=facts.person_key, records=tuple(_evidence(r) for r in records),
                      activities=before)
    return HistoryRow(facts.person_key, profile, outcome, as_of)


def _evidence(record: Person) -> Person:
    """The record as evidence: without the CRM values syncer writes and reads back (the
    stage, the old scores) and without the outcome dates."""
    kept = {name: value for name, value in record.properties.items()
            if name not in OUTCOME_DATE_FIELDS}
    return replace(record, crm_values={}, properties=kept)


def _crm_dated(records: Sequence[Person]) -> datetime | None:
    """The earliest outcome date a CRM keeps on the records (OUTCOME_DATE_FIELDS)."""
    found: list[datetime] = []
    for record in records:
        for name in OUTCOME_DATE_FIELDS:
            value = record.properties.get(name)
            if isinstance(value, str) and value.strip():
                try:
                    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                except ValueError:
                    continue
                found.append(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    return min(found) if found else None


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def _crm_outcome(records: Sequence[Person], loaded: LoadedConfig) -> bool:
    names = {c.name for c in loaded.config.connectors}
    for record in records:
        if record.source in names:
            stage = stage_from_crm(loaded.connector(record.source), record)
            if stage is not None and stage.rank >= OUTCOME_STAGES[0].rank:
                return True
    return False


# -- CSV -----------------------------------------------------------------------------------
def activity_column(kind: ActivityType) -> str:
    """The CSV column counting `kind` in the 90 days before as_of, e.g. page_view_90d."""
    return f"{kind.value}_{ACTIVITY_WINDOW.days}d"


def _fixed_columns() -> frozenset[str]:
    return frozenset({"id", "outcome", "as_of", "first_seen", *STANDARD_FIELDS,
                      *(activity_column(kind) for kind in ActivityType)})


def property_column(name: str) -> str:
    """The CSV column of a mapped property: its name, or `crm_<name>` when that is one of
    the fixed columns (a CRM field mapped as `outcome` must not overwrite the outcome)."""
    return f"crm_{name}" if name in _fixed_columns() else name


def csv_header(property_names: Iterable[str]) -> list[str]:
    """id, outcome, as_of, first_seen, the standard person fields, the mapped properties
    (sorted), then one count column per activity type."""
    return ["id", "outcome", "as_of", "first_seen", *STANDARD_FIELDS,
            *sorted({property_column(name) for name in property_names}),
            *(activity_column(kind) for kind in ActivityType)]


def export_history_csv(rows: Iterable[HistoryRow], path: str | Path) -> int:
    """Write the rows as the flat CSV `syncer model calibrate --from-state` reads (ordered
    by first_seen, scored at as_of); returns the rows written. Each person field is the
    first non-empty value across the person's records (most trusted first); outcome is 1
    or 0; as_of is ISO 8601 UTC."""
    materialised = list(rows)
    properties = {name for row in materialised for record in row.profile.records
                  for name in record.properties}
    header = csv_header(properties)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for row in materialised:
            writer.writerow(_flat(row, properties))
    return len(materialised)


def _flat(row: HistoryRow, properties: Iterable[str]) -> dict[str, object]:
    profile = row.profile
    flat: dict[str, object] = {"id": row.id, "outcome": int(row.outcome),
                               "as_of": row.as_of.isoformat(),
                               "first_seen": first_seen(row).isoformat()}
    for name in STANDARD_FIELDS:
        flat[name] = _cell(profile.first(name))
    for name in properties:
        flat[property_column(name)] = _cell(_first_property(profile, name))
    since = row.as_of - ACTIVITY_WINDOW
    counts = dict.fromkeys(ActivityType, 0)
    for activity in profile.activities:
        if since <= activity.occurred_at < row.as_of:
            counts[activity.type] += 1
    flat.update({activity_column(kind): count for kind, count in counts.items()})
    return flat


def first_seen(row: HistoryRow) -> datetime:
    """When the person first showed up: their earliest activity on record (as_of when
    there is none). History is split by it: splitting by as_of would put everyone who has
    not bought yet (dated at their latest pull) in the newest part."""
    return min((a.occurred_at for a in row.profile.activities), default=row.as_of)


def _first_property(profile: Profile, name: str) -> PropertyValue:
    for record in profile.records:
        value = record.properties.get(name)
        if value not in (None, ""):
            return value
    return None


def _cell(value: object) -> object:
    """A CSV cell: empty for missing, whole floats without '.0' (3.0 -> 3)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
