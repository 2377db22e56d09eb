"""Runs parsed SOQL against the sandbox's org and renders REST query records.

Binding checks every path against the schema first (unknown field -> INVALID_FIELD, a
datetime compared with a quoted string -> INVALID_FIELD), as Salesforce does before it
reads a row; then the WHERE clause is compiled into one predicate. Semantics follow SOQL
rather than SQL where they differ: text compares case-insensitively, `!=` matches nulls
(NOT IN does not), ORDER BY puts nulls first ascending and last descending.

Generated tables are never held: a query becomes a plan that streams rows (see
sandbox_results.py). In id order it scans the table, filtering on the fields known without
generating a row when the WHERE clause needs no others; `CreatedDate` ranges and order on
CampaignMember and Task come from the world's time index; any other ORDER BY sorts
(sort key, id) pairs, or selects page by page past 200,000 matches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from connectors.sandbox.salesforce import dates as sandbox_dates
from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.results import (
    MaterializedResult,
    QueryResult,
    StreamResult,
    count,
    sorted_stream,
)
from connectors.sandbox.salesforce.schema import (
    ID_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldSpec,
    ObjectSchema,
    id_number,
    is_valid_id,
    make_id,
    schema_for,
    to_18,
    to_json,
)
from connectors.sandbox.salesforce.tables import VirtualTable
from connectors.sandbox.salesforce.timeline import TimeRange

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.org import SalesforceOrg

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


@dataclass(frozen=True)
class BoundPath:
    """A field path checked against the schema: relationship hops, then the leaf field."""

    hops: tuple[FieldSpec, ...]
    leaf: FieldSpec
    names: tuple[str, ...]  # canonical JSON keys: relationship names, then the field name


def bind_path(schema: ObjectSchema, path: str) -> BoundPath:
    parts = path.split(".")
    current: tuple[ObjectSchema, ...] = (schema,)
    hops: list[FieldSpec] = []
    names: list[str] = []
    for relationship in parts[:-1]:
        spec = next((s.relationship(relationship) for s in current
                     if s.relationship(relationship)), None)
        if spec is None or spec.relationship_name is None:
            raise _no_such_column(relationship, current[0])
        hops.append(spec)
        names.append(spec.relationship_name)
        current = tuple(t for t in (schema_for(n) for n in spec.reference_to) if t)
    leaf = next((s.field(parts[-1]) for s in current if s.field(parts[-1])), None)
    if leaf is None:
        raise _no_such_column(parts[-1], current[0])
    names.append(leaf.name)
    return BoundPath(tuple(hops), leaf, tuple(names))


def _no_such_column(name: str, schema: ObjectSchema) -> soql.SoqlError:
    return soql.SoqlError(
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{schema.name}'. If you are attempting to use a "
        "custom field, be sure to append the '__c' after the custom field name.")


@dataclass(frozen=True)
class _SortItem:
    path: BoundPath
    descending: bool
    nulls_first: bool


class _Descending:
    """A sort value compared the other way round."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)

    def __gt__(self, other: _Descending) -> bool:
        return bool(other.value > self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __le__(self, other: _Descending) -> bool:
        return self == other or self < other

    __hash__ = None  # type: ignore[assignment]


class QueryEngine:
    """Plans and executes one parsed query over the org."""

    def __init__(self, source: SalesforceOrg) -> None:
        self.source = source

    def value(self, row: Row, path: BoundPath) -> Any:
        current: Row | None = row
        for hop in path.hops:
            target_id = current.get(hop.name) if current else None
            found = self.source.lookup(target_id) if target_id else None
            current = found[1] if found else None
        return current.get(path.leaf.name) if current else None

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
            query = replace(query, where=_and_live(query.where))
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
            window, rest = _time_window(query.where)
            if _order_is(order, "CreatedDate") or _order_is(order, "CreatedDate", "Id") \
                    or (not order and window is not None):
                window = window or TimeRange()
                residual = self._compile(schema, rest) if rest is not None else None
                fields = _field_names(rest) if rest is not None else frozenset()
                matches = timeline.count(window, residual, fields,
                                         self.source.changed[schema.name])

                def timed(after: Any) -> Iterator[tuple[Any, Row]]:
                    return ((key, row) for key, row in timeline.rows(window, after)
                            if residual is None or residual(row))
                return StreamResult(timed, matches, skip, cap)
        cheap = query.where is None or (
            _field_names(query.where) <= {f.lower() for f in table.cheap_fields})
        start = _id_floor(query.where, table)
        if not order or _order_is(order, "Id"):
            def natural(after: Any) -> Iterator[tuple[Any, Row]]:
                return self._scan(table, predicate, cheap, after or start, full=True)
            matches = count(self._scan(table, predicate, cheap, start, full=False))
            return StreamResult(natural, matches, skip, cap)
        sort_key = self._sort_key(order)

        def candidates() -> Iterator[tuple[Any, int]]:
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
                row = self.source.full(table, number, known["Id"])
                if row is None:
                    continue
            assert row is not None
            if predicate is not None and not predicate(row):
                continue
            if full and row is known:
                row = self.source.full(table, number, known["Id"])
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

    def _sort_key(self, order: list[_SortItem]) -> Callable[[Row], tuple[Any, ...]]:
        """A key giving SOQL's order: per item nulls first or last, then the value (case-
        insensitive text, descending reversed)."""
        def key(row: Row) -> tuple[Any, ...]:
            parts: list[Any] = []
            for item in order:
                value = _key(item.path.leaf, self.value(row, item.path))
                if value is None:
                    parts.append((0 if item.nulls_first else 2, 0))
                else:
                    parts.append((1, _Descending(value) if item.descending else value))
            return tuple(parts)
        return key

    def render(self, schema: ObjectSchema, row: Row, selected: list[BoundPath],
               version: str) -> dict[str, Any]:
        """One record as the REST API returns it, relationship fields as nested objects."""
        record: dict[str, Any] = {"attributes": _attributes(schema.name, row["Id"], version)}
        for path in selected:
            self._place(record, row, path, 0, version)
        return record

    def _place(self, target: dict[str, Any], row: Row, path: BoundPath, depth: int,
               version: str) -> None:
        if depth == len(path.hops):
            target[path.leaf.name] = to_json(path.leaf, row.get(path.leaf.name))
            return
        key = path.names[depth]
        reference = row.get(path.hops[depth].name)
        found = self.source.lookup(reference) if reference else None
        if found is None:
            target[key] = None
            return
        nested = target.get(key) or {
            "attributes": _attributes(found[0].name, found[1]["Id"], version)}
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
            return lambda row: _like(pattern, self.value(row, path))
        if isinstance(condition, soql.InList):
            wanted = {_literal_key(path.leaf, value) for value in condition.values}
            if condition.negated:  # unlike !=, NOT IN leaves out null values
                return lambda row: (value := getter(row)) is not None and value not in wanted
            return lambda row: getter(row) in wanted
        return self._comparison(path, condition, getter, lambda row: self.value(row, path))

    def _normalized_value(self, row: Row, path: BoundPath) -> Any:
        return _key(path.leaf, self.value(row, path))

    @staticmethod
    def _comparison(path: BoundPath, condition: soql.Comparison,
                    getter: Callable[[Row], Any], raw: Callable[[Row], Any]) -> Predicate:
        wanted = _literal_key(path.leaf, condition.value)
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
        compare: Mapping[str, Callable[[Any, Any], bool]] = {
            "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
        check = compare[op]

        def predicate(row: Row) -> bool:
            actual = getter(row)
            return actual is not None and check(actual, wanted)
        return predicate


def _and_live(where: soql.Condition | None) -> soql.Condition:
    """`where AND IsDeleted = false`: what `query` (not `queryAll`) answers."""
    live = soql.Comparison("IsDeleted", "=", soql.Literal("boolean", False))
    return live if where is None else soql.Junction("AND", (where, live))


def _attributes(object_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": object_name,
            "url": f"/services/data/v{version}/sobjects/{object_name}/{record_id}"}


def _key(spec: FieldSpec, value: Any) -> Any:
    """A value normalized for SOQL comparison: case-insensitive text; ids in their
    18-character form, compared case-sensitively, so `ORDER BY Id` and `Id > '...'` follow
    the order ids were issued in (the order of an id-order scan)."""
    if value is None:
        return None
    if spec.type in ID_TYPES:
        return to_18(value) if is_valid_id(value) else value
    if spec.type in TEXT_TYPES:
        return str(value).casefold()
    if spec.type in NUMBER_TYPES:
        return float(value)
    return value


_EXPECTED = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "double": "double",
             "int": "double", "currency": "double", "percent": "double"}


def _literal_key(spec: FieldSpec, literal: soql.Literal) -> Any:
    """Check a literal against the field type (as Salesforce does) and normalize it."""
    if literal.kind == "null":
        return None
    if spec.type in TEXT_TYPES or spec.type in ID_TYPES:
        if literal.kind != "string":
            raise soql.SoqlError(
                "INVALID_FIELD", f"value of filter criterion for field '{spec.name}' must be "
                "of type string and should be enclosed in quotes")
        text = str(literal.value)
        if spec.type in ID_TYPES and not is_valid_id(text):
            raise soql.SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}")
        return _key(spec, text)
    wanted_kind = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(
        spec.type, "number")
    if literal.kind != wanted_kind:
        raise soql.SoqlError(
            "INVALID_FIELD", f"value of filter criterion for field '{spec.name}' must be of "
            f"type {_EXPECTED.get(spec.type, spec.type)} and should not be enclosed in quotes")
    value = literal.value
    if isinstance(value, (datetime, date, bool)):
        return value
    return float(value) if value is not None else None


def _like(pattern: Any, value: Any) -> bool:
    return value is not None and pattern.fullmatch(str(value)) is not None


def _id_of(table: VirtualTable, number: int) -> str:
    return make_id(table.schema.key_prefix, number)


def _order_is(order: list[_SortItem], *fields: str) -> bool:
    """True if ORDER BY is exactly these fields of the object itself, ascending."""
    return [(i.path.names, i.descending) for i in order] == [((f,), False) for f in fields]


def _id_floor(where: soql.Condition | None, table: VirtualTable) -> int:
    """Where an id-order scan may start: past the bound of a top-level `Id > '...'` or
    `Id >= '...'` (the chunking pattern), so each chunk does not rescan the table."""
    floor = 0
    for part in _conjuncts(where) if where is not None else []:
        if isinstance(part, soql.Comparison) and part.path.lower() == "id" \
                and part.op in (">", ">=") and isinstance(part.value.value, str) \
                and is_valid_id(part.value.value) \
                and part.value.value[:3] == table.schema.key_prefix:
            number = id_number(to_18(part.value.value))
            if number is not None:
                floor = max(floor, number if part.op == ">" else number - 1)
    return floor


def _conjuncts(condition: soql.Condition) -> list[soql.Condition]:
    if isinstance(condition, soql.Junction) and condition.op == "AND":
        return [part for inner in condition.parts for part in _conjuncts(inner)]
    return [condition]


def _time_window(where: soql.Condition | None
                 ) -> tuple[TimeRange | None, soql.Condition | None]:
    """The CreatedDate bounds among the top-level AND conditions, and what remains."""
    if where is None:
        return None, None
    window: TimeRange | None = None
    rest: list[soql.Condition] = []
    for part in _conjuncts(where):
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


def _field_names(condition: soql.Condition | None) -> frozenset[str]:
    """Lower-case field paths a condition reads (relationship paths kept whole)."""
    if condition is None:
        return frozenset()
    if isinstance(condition, soql.Junction):
        return frozenset().union(*(_field_names(p) for p in condition.parts))
    if isinstance(condition, soql.Not):
        return _field_names(condition.inner)
    return frozenset({condition.path.lower()})
