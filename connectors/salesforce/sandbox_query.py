"""Runs parsed SOQL against the sandbox's in-memory org and renders REST query records.

Binding checks every path against the schema first (unknown field -> INVALID_FIELD, a
datetime compared with a quoted string -> INVALID_FIELD), as Salesforce does before it
reads a row; then the WHERE clause is compiled into one predicate and applied to each row.
Semantics follow SOQL rather than SQL where they differ: text compares case-insensitively,
`!=` matches nulls (NOT IN does not), ORDER BY puts nulls first ascending and last
descending.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from connectors.salesforce import soql
from connectors.salesforce.sandbox_schema import (
    ID_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldSpec,
    ObjectSchema,
    is_valid_id,
    schema_for,
    to_18,
    to_json,
)

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class RowSource(Protocol):
    """What the engine needs from the org: the rows of a type, and any row by id."""

    def rows(self, object_name: str) -> Iterable[Row]: ...

    def lookup(self, record_id: str) -> tuple[ObjectSchema, Row] | None: ...


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


class QueryEngine:
    """Executes one parsed query over a RowSource."""

    def __init__(self, source: RowSource) -> None:
        self.source = source

    def value(self, row: Row, path: BoundPath) -> Any:
        current: Row | None = row
        for hop in path.hops:
            target_id = current.get(hop.name) if current else None
            found = self.source.lookup(target_id) if target_id else None
            current = found[1] if found else None
        return current.get(path.leaf.name) if current else None

    def run(self, query: soql.Query) -> tuple[ObjectSchema, list[Row], list[BoundPath]]:
        """The matching rows in result order (after ORDER BY, OFFSET and LIMIT)."""
        schema = schema_for(query.sobject)
        if schema is None:
            raise soql.SoqlError("INVALID_TYPE",
                                 f"sObject type '{query.sobject}' is not supported.")
        selected = [bind_path(schema, path) for path in query.fields]
        predicate = self._compile(schema, query.where) if query.where else None
        rows = [row for row in self.source.rows(schema.name)
                if predicate is None or predicate(row)]
        if query.order_by:
            rows = self._sorted(schema, rows, query.order_by)
        start = query.offset or 0
        end = None if query.limit is None else start + query.limit
        return schema, rows[start:end], selected

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
        return self._comparison(path, condition, getter)

    def _normalized_value(self, row: Row, path: BoundPath) -> Any:
        return _key(path.leaf, self.value(row, path))

    @staticmethod
    def _comparison(path: BoundPath, condition: soql.Comparison,
                    getter: Callable[[Row], Any]) -> Predicate:
        wanted = _literal_key(path.leaf, condition.value)
        op = condition.op
        if path.leaf.type == "boolean" and op not in ("=", "!="):
            raise soql.SoqlError("INVALID_FIELD",
                                 f"invalid operator on boolean field '{path.leaf.name}': {op}")
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

    def _sorted(self, schema: ObjectSchema, rows: list[Row],
                items: tuple[soql.OrderItem, ...]) -> list[Row]:
        bound = [(bind_path(schema, item.path), item) for item in items]
        for path, _ in bound:
            if not path.leaf.filterable:
                raise soql.SoqlError("INVALID_FIELD",
                                     f"field '{path.leaf.name}' can not be sorted in a query")
        keyed = [([_key(path.leaf, self.value(row, path)) for path, _ in bound], row)
                 for row in rows]

        def compare(left: tuple[list[Any], Row], right: tuple[list[Any], Row]) -> int:
            for position, (_, item) in enumerate(bound):
                a, b = left[0][position], right[0][position]
                if a == b:
                    continue
                if a is None or b is None:
                    return (-1 if a is None else 1) * (1 if item.nulls_first else -1)
                result = -1 if a < b else 1
                return -result if item.descending else result
            return 0
        keyed.sort(key=functools.cmp_to_key(compare))
        return [row for _, row in keyed]


def _attributes(object_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": object_name,
            "url": f"/services/data/v{version}/sobjects/{object_name}/{record_id}"}


def _key(spec: FieldSpec, value: Any) -> Any:
    """A value normalized for SOQL comparison (case-insensitive text, 18-char ids)."""
    if value is None:
        return None
    if spec.type in ID_TYPES:
        return to_18(value).lower() if is_valid_id(value) else value.lower()
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
