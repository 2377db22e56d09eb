"""What a SOQL WHERE clause tells the sandbox's query planner (query.py) before any row is
read: the live-rows filter `query` adds, where an id-order scan may start, the CreatedDate
window the time index can serve, and which fields the clause reads.
"""

from __future__ import annotations

from datetime import datetime

from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.schema import id_number, is_valid_id, to_18
from connectors.sandbox.salesforce.tables import VirtualTable
from connectors.sandbox.salesforce.timeline import TimeRange


def and_live(where: soql.Condition | None) -> soql.Condition:
    """`where AND IsDeleted = false`: what `query` (not `queryAll`) answers."""
    live = soql.Comparison("IsDeleted", "=", soql.Literal("boolean", False))
    return live if where is None else soql.Junction("AND", (where, live))


def id_floor(where: soql.Condition | None, table: VirtualTable) -> int:
    """Where an id-order scan may start: past the bound of a top-level `Id > '...'` or
    `Id >= '...'` (the chunking pattern), so each chunk does not rescan the table."""
    floor = 0
    for part in conjuncts(where) if where is not None else []:
        if isinstance(part, soql.Comparison) and part.path.lower() == "id" \
                and part.op in (">", ">=") and isinstance(part.value.value, str) \
                and is_valid_id(part.value.value) \
                and part.value.value[:3] == table.schema.key_prefix:
            number = id_number(to_18(part.value.value))
            if number is not None:
                floor = max(floor, number if part.op == ">" else number - 1)
    return floor


def conjuncts(condition: soql.Condition) -> list[soql.Condition]:
    if isinstance(condition, soql.Junction) and condition.op == "AND":
        return [part for inner in condition.parts for part in conjuncts(inner)]
    return [condition]


def time_window(where: soql.Condition | None
                 ) -> tuple[TimeRange | None, soql.Condition | None]:
    """The CreatedDate bounds among the top-level AND conditions, and what remains."""
    if where is None:
        return None, None
    window: TimeRange | None = None
    rest: list[soql.Condition] = []
    for part in conjuncts(where):
        value = part.value.value if isinstance(part, soql.Comparison) else None
        if not (isinstance(part, soql.Comparison) and part.path.lower() == "createddate"
                and isinstance(value, datetime) and part.op in ("=", ">", ">=", "<", "<=")):
            rest.append(part)
            continue
        window = window or TimeRange()
        if part.op in ("=", ">", ">=") and (window.low is None or value >= window.low):
            strict = part.op == ">"
            if value != window.low or strict:
                window = TimeRange(value, not strict, window.high, window.high_inclusive)
        if part.op in ("=", "<", "<=") and (window.high is None or value <= window.high):
            strict = part.op == "<"
            if value != window.high or strict:
                window = TimeRange(window.low, window.low_inclusive, value, not strict)
    remaining = None if not rest else rest[0] if len(rest) == 1 else soql.Junction(
        "AND", tuple(rest))
    return window, remaining


def field_names(condition: soql.Condition | None) -> frozenset[str]:
    """Lower-case field paths a condition reads (relationship paths kept whole)."""
    if condition is None:
        return frozenset()
    if isinstance(condition, soql.Junction):
        return frozenset().union(*(field_names(p) for p in condition.parts))
    if isinstance(condition, soql.Not):
        return field_names(condition.inner)
    return frozenset({condition.path.lower()})
