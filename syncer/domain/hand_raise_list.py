"""A list of hand-raises from a CSV file (`syncer import`): the generic webhook's shape, one
row at a time.

Columns are syncer's field names (email, first_name, last_name, title, company, industry,
employees, country, activity, occurred_at, event_id, and `attr.<name>` for activity
attributes) or are mapped to them with `--map "Email Address=email,Registered=occurred_at"`.
Each row becomes the JSON object a webhook would send and goes through the same check
(syncer/domain/inbound.py), so a bad row is named by its line, field and fix and the good
rows are kept. A row without an event id gets one derived from its source and content:
importing the same file again yields the same ids, and nothing new.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from syncer.domain.failures import BadInput
from syncer.domain.inbound import PERSON_FIELDS, HandRaise, HandRaiseInvalid, parse_hand_raise
from syncer.domain.types import ActivityType

#: the fields a column may be mapped to, besides the person's and `attr.<name>`
ROW_FIELDS = ("activity", "occurred_at", "event_id")


@dataclass
class ListImport:
    """The rows of one file: the hand-raises kept, and one line per bad row."""

    good: list[HandRaise] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    rows: int = 0


def parse_mapping(text: str | None) -> dict[str, str]:
    """`COL=field,COL=field` -> {column: field}; BadInput naming a bad pair and the fix."""
    mapping: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        column, equals, target = pair.partition("=")
        target = target.strip()
        known = target in PERSON_FIELDS or target in ROW_FIELDS or target.startswith("attr.")
        if not equals or not column.strip() or not known:
            raise BadInput(f"--map {pair.strip()!r}: expected COLUMN=field with a field of "
                           f"{', '.join((*PERSON_FIELDS, *ROW_FIELDS))} or attr.<name>. "
                           'Fix: e.g. --map "Email Address=email,Registered=occurred_at"')
        mapping[column.strip()] = target
    return mapping


def _event_id(source: str, row: Mapping[str, str]) -> str:
    """A stable id for a row that carries none: the same row of the same source, the same
    id, however often it is imported."""
    canonical = "\x1f".join(f"{k}={row[k].strip()}" for k in sorted(row) if row[k])
    digest = hashlib.sha256(f"{source}\x1e{canonical.lower()}".encode()).hexdigest()
    return f"row-{digest[:32]}"


def hand_raise_of(row: Mapping[str, str], source: str,
                  activity: ActivityType | None) -> dict[str, object]:
    """One mapped CSV row as the webhook's JSON object."""
    values = {k: v.strip() for k, v in row.items() if v is not None and v.strip()}
    kind = values.get("activity") or (activity.value if activity else None)
    data: dict[str, object] = {
        "event_id": values.get("event_id") or _event_id(source, values),
        "person": {f: values.get(f) for f in PERSON_FIELDS}}
    if kind is not None or values.get("occurred_at"):
        data["activity"] = {
            "type": kind, "occurred_at": values.get("occurred_at"),
            "attributes": {k.removeprefix("attr."): v for k, v in values.items()
                           if k.startswith("attr.")}}
    return data


def read_list(text: str, source: str, *, mapping: Mapping[str, str],
              activity: ActivityType | None, now: datetime) -> ListImport:
    """Check every row of a CSV text; the header is line 1, so the first row is line 2."""
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = sorted(set(mapping) - set(columns))
    if missing:
        raise BadInput(f"--map names column(s) {', '.join(missing)} the file does not have "
                       f"(its columns: {', '.join(columns)}). Fix: use the header's names")
    targets = {c: mapping.get(c, c) for c in columns}
    if "email" not in targets.values():
        raise BadInput(f"no column holds the email (columns: {', '.join(columns)}). Fix: "
                       'name one `email`, or map it: --map "Your Column=email"')
    result = ListImport()
    for number, raw in enumerate(reader, start=2):
        result.rows += 1
        row = {targets[c.strip()]: v or "" for c, v in raw.items()
               if c is not None and c.strip() in targets
               and (targets[c.strip()] in PERSON_FIELDS or targets[c.strip()] in ROW_FIELDS
                    or targets[c.strip()].startswith("attr."))}
        try:
            result.good.append(parse_hand_raise(hand_raise_of(row, source, activity),
                                                now=now))
        except HandRaiseInvalid as invalid:
            result.bad.extend(f"line {number}: {problem}" for problem in invalid.problems)
    return result


def unique(raises: Iterable[HandRaise]) -> list[HandRaise]:
    """The first of each event id (a file may repeat a row)."""
    seen: dict[str, HandRaise] = {}
    for hand_raise in raises:
        seen.setdefault(hand_raise.event_id, hand_raise)
    return list(seen.values())
