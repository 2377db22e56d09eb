"""Runs parsed SOQL against the sandbox's org and renders REST query records.

Binding checks every path against the schema first (unknown field -> INVALID_FIELD, a
datetime compared with a quoted string -> INVALID_FIELD), as Salesforce does before it
reads a row; then the WHERE clause is compiled into one predicate. Semantics follow SOQL
rather than SQL where they differ: text compares case-insensitively, `!=` matches nulls
(NOT IN does not), ORDER BY puts nulls first ascending and last descending. Binding and
literals live in query_bind.py, what the planner reads off the WHERE clause in
query_where.py.

Generated tables are never held: a query becomes a plan that streams rows (see
sandbox_results.py). In id order it scans the table, filtering on the fields known without
generating a row when the WHERE clause needs no others; `CreatedDate` ranges and order on
CampaignMember and Task come from the world's time index; any other ORDER BY sorts
(sort key, id) pairs, or selects page by page past 200,000 matches.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from connectors.sandbox.salesforce import dates as sandbox_dates
from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.query_bind import (
    BoundPath,
    SoqlValue,
    bind_path,
    like,
    literal_key,
    normalized,
)
from connectors.sandbox.salesforce.query_where import (
    and_live,
    field_names,
    id_floor,
    time_window,
)
from connectors.sandbox.salesforce.results import (
    MaterializedResult,
    QueryResult,
    SortKey,
    StreamResult,
    count,
    sorted_stream,
)
from connectors.sandbox.salesforce.rows import FieldValue, Row, text, text_or_none
from connectors.sandbox.salesforce.schema import (
    TEXT_TYPES,
    ObjectSchema,
    make_id,
    schema_for,
    to_json,
)
from connectors.sandbox.salesforce.tables import VirtualTable
from connectors.sandbox.salesforce.timeline import TimeRange

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.org import SalesforceOrg

Predicate = Callable[[Row], bool]


@dataclass(frozen=True)
class _SortItem:
    path: BoundPath
    descending: bool
    nulls_first: bool


class _Descending:
    """A sort value compared the other way round."""

    __slots__ = ("value",)

    def __init__(self, value: SoqlValue) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return bool(operator.lt(other.value, self.value))

    def __gt__(self, other: _Descending) -> bool:
        return bool(operator.gt(other.value, self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __le__(self, other: _Descending) -> bool:
        return self == other or self < other

    __hash__ = None  # type: ignore[assignment]


class QueryEngine:
    """Plans and executes one parsed query over the org."""

    def __init__(self, source: SalesforceOrg) -> None:
        self.source = source

    def value(self, row: Row, path: BoundPath) -> FieldValue:
        current: Row | None = row
        for hop in path.hops:
            target_id = text_or_none(current, hop.name) if current else None
            found = self.source.lookup(target_id) if target_id else None
            current = found[1] if found else None
        if not current:
            return None
        value = current.get(path.leaf.name)
        # a checkbox a record never set is false, never null (filters and ORDER BY agree)
        return False if value is None and path.leaf.type == "boolean" else value

    def run(self, query: soql.Query, *, include_deleted: bool = False,
            now: datetime | None = None) -> tuple[ObjectSchema, QueryResult, list[BoundPath]]:
        """The query's result (rows in result order, after ORDER BY, OFFSET and LIMIT).
        Deleted rows only with `include_deleted` (queryAll), as in a real org. Date
        literals (TODAY, LAST_N_DAYS:n, ...) are ranges around `now` (the org's clock)."""
        schema = schema_for(query.sobject)
        if schema is None:
            raise soql.SoqlError("INVALID_TYPE",
                                 f"sObject type '{query.sobject}' is not supported.")
        if query.where is not None:
            query = replace(query, where=sandbox_dates.resolve(
                query.where, lambda path: bind_path(schema, path).leaf.type,
                now or datetime.now(timezone.utc)))
        selected = [bind_path(schema, path) for path in query.fields]
        for bound in selected:
            if not bound.hops and not self.source.has_field(schema.name, bound.leaf.name):
                raise soql.SoqlError("INVALID_FIELD", f"No such column '{bound.leaf.name}' on "
                                     f"entity '{schema.name}'. If you are attempting to use a "
                                     "custom field, be sure to append the '__c' after the "
                                     "custom field name.")
        if not include_deleted and self.source.has_deleted(schema.name):
            # Only tables with a deleted row pay for the filter (IsDeleted is a cheap field).
            query = replace(query, where=and_live(query.where))
        predicate = self._compile(schema, query.where) if query.where else None
        order = self._sort_items(schema, query.order_by)
        table = self.source.virtual(schema.name)
        skip, cap = query.offset or 0, query.limit
        if table is None:
            rows = [row for row in self.source.rows(schema.name)
                    if predicate is None or predicate(row)]
            if order:
                rows.sort(key=self._sort_key(order))
            end = None if cap is None else skip + cap
            return schema, MaterializedResult(rows[skip:end]), selected
        return schema, self._plan(schema, table, query, predicate, order), selected

    def _plan(self, schema: ObjectSchema, table: VirtualTable, query: soql.Query,
              predicate: Predicate | None, order: list[_SortItem]) -> QueryResult:
        skip, cap = query.offset or 0, query.limit
        timeline = self.source.timelines.get(schema.name)
        if timeline is not None:
            window, rest = time_window(query.where)
            if _order_is(order, "CreatedDate") or _order_is(order, "CreatedDate", "Id") \
                    or (not order and window is not None):
                window = window or TimeRange()
                residual = self._compile(schema, rest) if rest is not None else None
                fields = field_names(rest) if rest is not None else frozenset()
                matches = timeline.count(window, residual, fields,
                                         self.source.changed[schema.name])

                def timed(after: tuple[datetime, int] | None
                          ) -> Iterator[tuple[tuple[datetime, int], Row]]:
                    return ((key, row) for key, row in timeline.rows(window, after)
                            if residual is None or residual(row))
                return StreamResult(timed, matches, skip, cap)
        cheap = query.where is None or (
            field_names(query.where) <= {f.lower() for f in table.cheap_fields})
        start = id_floor(query.where, table)
        if not order or _order_is(order, "Id"):
            def natural(after: int | None) -> Iterator[tuple[int, Row]]:
                return self._scan(table, predicate, cheap, after or start, full=True)
            matches = count(self._scan(table, predicate, cheap, start, full=False))
            return StreamResult(natural, matches, skip, cap)
        sort_key = self._sort_key(order)

        def candidates() -> Iterator[tuple[SortKey, int]]:
            for number, row in self._scan(table, predicate, cheap, start, full=True):
                yield (*sort_key(row), number), number

        def fetch(number: int) -> Row | None:
            return self.source.full(table, number, _id_of(table, number))
        matches = count(self._scan(table, predicate, cheap, start, full=False))
        return StreamResult(sorted_stream(candidates, fetch, matches), matches, skip, cap)

    def _scan(self, table: VirtualTable, predicate: Predicate | None, cheap: bool,
              after: int, *, full: bool) -> Iterator[tuple[int, Row]]:
        """(id number, row) of matching rows after `after`, in id order. Rows are only
        generated when the filter needs them or `full` asks for them."""
        changed = self.source.changed[table.schema.name]
        for number, known in self.source.scan(table, after):
            row: Row | None = known
            if number in changed or not cheap:
                row = self.source.full(table, number, text(known, "Id"))
                if row is None:
                    continue
            assert row is not None
            if predicate is not None and not predicate(row):
                continue
            if full and row is known:
                row = self.source.full(table, number, text(known, "Id"))
                if row is None:
                    continue
            yield number, row

    def _sort_items(self, schema: ObjectSchema,
                    items: tuple[soql.OrderItem, ...]) -> list[_SortItem]:
        bound = []
        for item in items:
            path = bind_path(schema, item.path)
            if not path.leaf.filterable:
                raise soql.SoqlError("INVALID_FIELD",
                                     f"field '{path.leaf.name}' can not be sorted in a query")
            bound.append(_SortItem(path, item.descending, item.nulls_first))
        return bound

    def _sort_key(self, order: list[_SortItem]) -> Callable[[Row], SortKey]:
        """A key giving SOQL's order: per item nulls first or last, then the value (case-
        insensitive text, descending reversed)."""
        def key(row: Row) -> SortKey:
            parts: list[object] = []
            for item in order:
                value = normalized(item.path.leaf, self.value(row, item.path))
                if value is None:
                    parts.append((0 if item.nulls_first else 2, 0))
                else:
                    parts.append((1, _Descending(value) if item.descending else value))
            return tuple(parts)
        return key

    def render(self, schema: ObjectSchema, row: Row, selected: list[BoundPath],
               version: str) -> dict[str, object]:
        """One record as the REST API returns it, relationship fields as nested objects."""
        record: dict[str, object] = {
            "attributes": _attributes(schema.name, text(row, "Id"), version)}
        for path in selected:
            self._place(record, row, path, 0, version)
        return record

    def _place(self, target: dict[str, object], row: Row, path: BoundPath, depth: int,
               version: str) -> None:
        if depth == len(path.hops):
            target[path.leaf.name] = to_json(path.leaf, row.get(path.leaf.name))
            return
        key = path.names[depth]
        reference = text_or_none(row, path.hops[depth].name)
        found = self.source.lookup(reference) if reference else None
        if found is None:
            target[key] = None
            return
        existing = target.get(key)  # an earlier field selected through this hop made it
        nested: dict[str, object] = existing if isinstance(existing, dict) else {
            "attributes": _attributes(found[0].name, text(found[1], "Id"), version)}
        target[key] = nested
        self._place(nested, found[1], path, depth + 1, version)

    def _compile(self, schema: ObjectSchema, condition: soql.Condition) -> Predicate:
        if isinstance(condition, soql.Junction):
            parts = [self._compile(schema, part) for part in condition.parts]
            if condition.op == "AND":
                return lambda row: all(part(row) for part in parts)
            return lambda row: any(part(row) for part in parts)
        if isinstance(condition, soql.Not):
            inner = self._compile(schema, condition.inner)
            return lambda row: not inner(row)
        path = bind_path(schema, condition.path)
        if not path.leaf.filterable:
            raise soql.SoqlError("INVALID_FIELD",
                                 f"field '{path.leaf.name}' can not be filtered in a query")
        getter = functools.partial(self._normalized_value, path=path)
        if isinstance(condition, soql.Like):
            if path.leaf.type not in TEXT_TYPES:
                raise soql.SoqlError("INVALID_FIELD", f"invalid operator on {path.leaf.type} "
                                     f"field '{path.leaf.name}': LIKE")
            pattern = condition.pattern
            return lambda row: like(pattern, self.value(row, path))
        if isinstance(condition, soql.InList):
            wanted = {literal_key(path.leaf, value) for value in condition.values}
            if condition.negated:  # unlike !=, NOT IN leaves out null values
                return lambda row: (value := getter(row)) is not None and value not in wanted
            return lambda row: getter(row) in wanted
        return self._comparison(path, condition, getter, lambda row: self.value(row, path))

    def _normalized_value(self, row: Row, path: BoundPath) -> SoqlValue | None:
        return normalized(path.leaf, self.value(row, path))

    @staticmethod
    def _comparison(path: BoundPath, condition: soql.Comparison,
                    getter: Callable[[Row], SoqlValue | None],
                    raw: Callable[[Row], FieldValue]) -> Predicate:
        wanted = literal_key(path.leaf, condition.value)
        op = condition.op
        if path.leaf.type == "boolean" and op not in ("=", "!="):
            raise soql.SoqlError("INVALID_FIELD",
                                 f"invalid operator on boolean field '{path.leaf.name}': {op}")
        if wanted is None and op in ("=", "!="):  # a null test needs no normalizing
            if op == "=":
                return lambda row: raw(row) is None
            return lambda row: raw(row) is not None
        if op == "=":
            return lambda row: getter(row) == wanted
        if op == "!=":
            return lambda row: getter(row) != wanted
        if wanted is None:
            return lambda row: False
        compare: Mapping[str, Callable[[SoqlValue, SoqlValue], bool]] = {
            "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
        check = compare[op]

        def predicate(row: Row) -> bool:
            actual = getter(row)
            return actual is not None and check(actual, wanted)
        return predicate


def _attributes(object_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": object_name,
            "url": f"/services/data/v{version}/sobjects/{object_name}/{record_id}"}


def _id_of(table: VirtualTable, number: int) -> str:
    return make_id(table.schema.key_prefix, number)


def _order_is(order: list[_SortItem], *fields: str) -> bool:
    """True if ORDER BY is exactly these fields of the object itself, ascending."""
    return [(i.path.names, i.descending) for i in order] == [((f,), False) for f in fields]


