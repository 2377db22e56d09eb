"""Activity-count columns: a history column named `<activity type>_<N>d` (page_view_90d,
form_fill_30d) counts that person's activities of that type in the N days before the
row's time, as `syncer/run/outcome_history.py` exports them from the state store.

Such a column is not a person field: a sync has the activities, not the count. So a
history row turns the count back into that many activities at the row's instant (rows.py),
and calibration writes what it learns about the column as an engagement aggregate
(`measure: count` over `within_days: N`), which counts the same activities in a sync.
"""

from __future__ import annotations

import re

from syncer.domain.types import ActivityType

_PATTERN = re.compile(r"^([a-z_]+?)_(\d{1,4})d$")
#: At most this many activities are made from one count (a count of 10,000 page views
#: scores like 1,000 in any bins a person would write).
MAX_COUNT = 1000


def activity_count_column(field: str) -> tuple[ActivityType, int] | None:
    """(activity type, window in days) for an activity-count field name, else None."""
    match = _PATTERN.match(field)
    if match is None:
        return None
    try:
        kind = ActivityType(match.group(1))
    except ValueError:
        return None
    days = int(match.group(2))
    return (kind, days) if days > 0 else None
