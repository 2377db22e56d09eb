"""SOQL's relative date literals (YESTERDAY, TODAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n)
resolved against the sandbox's clock.

Each literal is a range of whole days, starting at 00:00:00 (UTC: the sandbox org's time
zone), per Salesforce's "Date Formats and Date Literals" page: TODAY is the current day,
LAST_N_DAYS:n the current day and the n days before it (LAST_N_DAYS:1 is yesterday and
today), NEXT_N_DAYS:n the n days after today. A comparison with a range becomes plain
comparisons with its bounds: `= range` is inside it, `<` before its start, `<=` before its
end, `>` from its end on, `>=` from its start on, `!=` outside it (nulls included, as `!=`).
So the query engine, and its CreatedDate time index, only ever see fixed dates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone

from connectors.sandbox.salesforce import soql


def day_range(literal: str, today: date) -> tuple[date, date]:
    """[first day, day after the last) of a relative date literal, e.g. "LAST_N_DAYS:7"."""
    name, _, count = literal.partition(":")
    n = int(count) if count else 0
    ranges = {"TODAY": (today, today + timedelta(days=1)),
              "YESTERDAY": (today - timedelta(days=1), today),
              "TOMORROW": (today + timedelta(days=1), today + timedelta(days=2)),
              "LAST_N_DAYS": (today - timedelta(days=n), today + timedelta(days=1)),
              "NEXT_N_DAYS": (today + timedelta(days=1), today + timedelta(days=1 + n))}
    if name not in ranges:  # pragma: no cover - the tokenizer admits no other
        raise soql.SoqlError("MALFORMED_QUERY", f"unsupported date literal: {literal}")
    return ranges[name]


def resolve(condition: soql.Condition, field_type: Callable[[str], str],
            now: datetime) -> soql.Condition:
    """`condition` with every relative date literal replaced by fixed bounds: dates for a
    date field, midnight UTC datetimes for a datetime field (other fields keep a datetime
    bound, which the engine refuses as it refuses any literal of the wrong type)."""
    today = now.astimezone(timezone.utc).date()
    if isinstance(condition, soql.Junction):
        return soql.Junction(condition.op, tuple(resolve(part, field_type, now)
                                                 for part in condition.parts))
    if isinstance(condition, soql.Not):
        return soql.Not(resolve(condition.inner, field_type, now))
    if isinstance(condition, soql.Comparison) and condition.value.kind == "relative":
        bounds = _bounds(condition.path, str(condition.value.value), field_type, today)
        return _compare(condition.path, condition.op, *bounds)
    if isinstance(condition, soql.InList) and any(v.kind == "relative"
                                                  for v in condition.values):
        return _in_list(condition, field_type, today)
    return condition


def _bounds(path: str, literal: str, field_type: Callable[[str], str],
            today: date) -> tuple[soql.Literal, soql.Literal]:
    first, end = day_range(literal, today)
    if field_type(path) == "date":
        return soql.Literal("date", first), soql.Literal("date", end)
    return (soql.Literal("datetime", datetime.combine(first, time(0), tzinfo=timezone.utc)),
            soql.Literal("datetime", datetime.combine(end, time(0), tzinfo=timezone.utc)))


def _inside(path: str, start: soql.Literal, end: soql.Literal) -> soql.Condition:
    return soql.Junction("AND", (soql.Comparison(path, ">=", start),
                                 soql.Comparison(path, "<", end)))


def _compare(path: str, op: str, start: soql.Literal, end: soql.Literal) -> soql.Condition:
    if op == "=":
        return _inside(path, start, end)
    if op == "!=":
        return soql.Not(_inside(path, start, end))
    bound = {"<": ("<", start), "<=": ("<", end), ">": (">=", end), ">=": (">=", start)}
    new_op, value = bound[op]
    return soql.Comparison(path, new_op, value)


def _in_list(condition: soql.InList, field_type: Callable[[str], str],
             today: date) -> soql.Condition:
    """IN (TODAY, ...) is inside any of the ranges (fixed values compared as they are);
    NOT IN is outside all of them, and leaves out nulls as NOT IN does."""
    path = condition.path
    parts: list[soql.Condition] = []
    fixed = [v for v in condition.values if v.kind != "relative"]
    if fixed:
        parts.append(soql.InList(path, False, tuple(fixed)))
    parts += [_inside(path, *_bounds(path, str(v.value), field_type, today))
              for v in condition.values if v.kind == "relative"]
    anywhere = parts[0] if len(parts) == 1 else soql.Junction("OR", tuple(parts))
    if not condition.negated:
        return anywhere
    present = soql.Comparison(path, "!=", soql.Literal("null", None))
    return soql.Junction("AND", (present, soql.Not(anywhere)))
