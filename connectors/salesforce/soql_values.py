"""Values in SOQL the production client writes: through simple-salesforce's `format_soql`,
which quotes and escapes them (never an f-string of a raw value)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from simple_salesforce.format import format_soql


def quote(value: str) -> str:
    """A SOQL string literal for `value`, escaped so it can never end the literal early."""
    return str(format_soql("{}", value))


def datetime_literal(value: datetime) -> str:
    """A SOQL datetime literal in UTC, whole seconds (rounded down)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return str(format_soql("{}", value.astimezone(timezone.utc).replace(microsecond=0)))


def outside(field: str, ranges: Sequence[tuple[datetime, datetime]]) -> list[str]:
    """One condition per (start, end] of `ranges` keeping `field` out of it: how an
    incremental pull leaves out the stretches of syncer's own writes."""
    return [f"({field} <= {datetime_literal(start)} OR {field} > {datetime_literal(end)})"
            for start, end in ranges]
