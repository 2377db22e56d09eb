"""A column mapping: how a history file's columns read as syncer's fields and activities.

It lets an admin backtest a model written with syncer's field names (`source`, `visits`,
activity types) on an export whose columns are named otherwise, without fitting anything:

```yaml
columns: {"Lead Source": source, "TotalVisits": visits}     # column -> syncer field
values: {"Lead Source": {"google": "Google"}}              # optional recoding
activities: {"Last Activity": {"Email Bounced": email_bounce}}  # value -> one activity
flags: {"Do Not Email": {"yes": unsubscribe}}               # same, for yes/no columns
```

Values are matched ignoring case and surrounding spaces. An activity made from a row is
dated at the row's scoring instant, so it counts in full.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from syncer.domain.types import ActivityType
from syncer.qualify.learn.history import HistoryError

_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")
_SECTIONS = ("columns", "values", "activities", "flags")


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Parsed mapping; keys are column headers (or field names) as the user wrote them."""

    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    activities: Mapping[str, Mapping[str, ActivityType]] = field(default_factory=dict)


def _text_map(section: str, value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise HistoryError(f"{where}: `{section}` must map column names to values. Fix: "
                           f"write e.g. {section}: {{\"Lead Source\": source}}")
    return {str(k): str(v) for k, v in value.items()}


def _activity(name: str, where: str) -> ActivityType:
    try:
        return ActivityType(name.strip())
    except ValueError:
        valid = ", ".join(t.value for t in ActivityType)
        raise HistoryError(f"{where}: {name!r} is not an activity type. Fix: use one of "
                           f"{valid}") from None


def parse_mapping(data: object, source: str = "<mapping>") -> ColumnMap:
    """Validate a mapping given as parsed YAML; HistoryError names the bad entry."""
    if data is None:
        return ColumnMap()
    if not isinstance(data, dict):
        raise HistoryError(f"{source}: a column mapping is a YAML mapping with "
                           f"{', '.join(_SECTIONS)}. Fix: see config/examples/"
                           "xeducation-columns.yaml")
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        raise HistoryError(f"{source}: unknown section(s) {', '.join(map(str, unknown))}. "
                           f"Fix: use {', '.join(_SECTIONS)}")
    columns = _text_map("columns", data.get("columns") or {}, source)
    for column, name in columns.items():
        if not _FIELD.match(name):
            raise HistoryError(f"{source}: columns.{column}: {name!r} is not a field name. "
                               "Fix: lower case letters, digits and _, starting with a letter")
    values = {column: {k.strip().lower(): v for k, v in
                       _text_map(f"values.{column}", table, source).items()}
              for column, table in _text_map_of_maps("values", data, source).items()}
    activities: dict[str, dict[str, ActivityType]] = {}
    for section in ("activities", "flags"):
        for column, table in _text_map_of_maps(section, data, source).items():
            entries = _text_map(f"{section}.{column}", table, source)
            activities.setdefault(column, {}).update(
                {k.strip().lower(): _activity(v, f"{source}: {section}.{column}.{k}")
                 for k, v in entries.items()})
    return ColumnMap(columns, values, activities)


def _text_map_of_maps(section: str, data: dict[str, object], source: str
                      ) -> dict[str, object]:
    value = data.get(section) or {}
    if not isinstance(value, dict):
        raise HistoryError(f"{source}: `{section}` must map column names to value tables. "
                           f"Fix: write e.g. {section}: {{\"Last Activity\": {{...}}}}")
    return {str(k): v for k, v in value.items()}


def load_mapping(path: str | Path) -> ColumnMap:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the column mapping ({exc.strerror}). Fix: "
                           "check the --map path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HistoryError(f"{path}: not valid YAML ({exc.__class__.__name__}). Fix: check "
                           "indentation and quotes") from None
    return parse_mapping(data, str(path))
