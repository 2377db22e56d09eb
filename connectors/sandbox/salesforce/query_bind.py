"""SOQL paths and literals checked against the sandbox org's schema, as Salesforce checks
them before it reads a row (connectors/sandbox/salesforce/query.py runs the query): an
unknown field is INVALID_FIELD, a literal of the wrong type too; values are normalized for
SOQL's comparisons (case-insensitive text, 18-character ids, numbers as floats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.rows import FieldValue
from connectors.sandbox.salesforce.schema import (
    ID_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldSpec,
    ObjectSchema,
    is_valid_id,
    schema_for,
    to_18,
)

#: a field value as SOQL compares it (`normalized`): folded text, an 18-character id, a
#: number as a float, a date or datetime, a boolean
SoqlValue = str | float | bool | date


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


def normalized(spec: FieldSpec, value: FieldValue) -> SoqlValue | None:
    """A value normalized for SOQL comparison: case-insensitive text; ids in their
    18-character form, compared case-sensitively, so `ORDER BY Id` and `Id > '...'` follow
    the order ids were issued in (the order of an id-order scan)."""
    if value is None:
        return None
    if spec.type in ID_TYPES:
        text = str(value)
        return to_18(text) if is_valid_id(text) else text
    if spec.type in TEXT_TYPES:
        return str(value).casefold()
    if isinstance(value, dict):  # a compound field: neither filterable nor sortable
        raise soql.SoqlError("INVALID_FIELD", f"field '{spec.name}' can not be compared")
    if spec.type in NUMBER_TYPES and not isinstance(value, date):
        return float(value)
    return value


_EXPECTED = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "double": "double",
             "int": "double", "currency": "double", "percent": "double"}


def literal_key(spec: FieldSpec, literal: soql.Literal) -> SoqlValue | None:
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
        return normalized(spec, text)
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


def like(pattern: re.Pattern[str], value: FieldValue) -> bool:
    return value is not None and pattern.fullmatch(str(value)) is not None
