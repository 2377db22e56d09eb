"""The CRM search endpoint's request rules and filter semantics.

Integration tools page through search with `lastmodifieddate`/`hs_object_id` windows and
must cope with its limits (200 per page, 5 filter groups, 10 filters a group, 25 in all, no
result past the 10,000th), so the sandbox enforces the same rules and compares values by
the property's type: numbers as numbers, datetimes as instants, text case-insensitively.

A search scans the contacts lazily and keeps only the results up to the requested page
(at most the 10,000 cap), so it works on a portal of a million contacts without holding it.
Companies and deals (connectors/sandbox/hubspot/objects_api.py) are searched by the same
rules over their own property table (`schema`) and free-text properties.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Protocol, TypeVar

from connectors.sandbox.hubspot.http import parse_instant, validation_error
from connectors.sandbox.hubspot.schema import PROPERTY_BY_NAME, PropertyDef

MAX_LIMIT = 200
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
MAX_QUERY_CHARS = 3000
QUERY_PROPERTIES = ("email", "firstname", "lastname", "company", "hs_object_id")

Comparable = float | datetime | str


class Searchable(Protocol):
    """A record search reads: a numeric id and its property values (a Contact, or a
    company or deal of connectors/sandbox/hubspot/objects.py)."""

    @property
    def id(self) -> str: ...

    @property
    def properties(self) -> dict[str, str | None]: ...


R = TypeVar("R", bound=Searchable)


@dataclass(frozen=True, slots=True)
class Filter:
    """One filter of a search body: propertyName, operator and value(s), as HubSpot
    spells them (`token`: the value as CONTAINS_TOKEN reads it)."""

    property: str
    #: the property's type (number, datetime, ...): how values are compared
    kind: str
    operator: str
    value: object
    high_value: object
    values: tuple[object, ...]
    token: str


@dataclass(frozen=True, slots=True)
class SearchRequest:
    filter_groups: list[list[Filter]]
    sorts: list[tuple[str, bool]]  # (property, descending)
    properties: list[str] | None
    limit: int
    offset: int
    query: str | None
    #: property -> type, of every property sorted on (filters carry their own)
    kinds: Mapping[str, str] = field(default_factory=dict)
    #: the properties a free-text `query` looks in
    query_properties: tuple[str, ...] = QUERY_PROPERTIES


def parse_search(body: object, max_limit: int = MAX_LIMIT,
                 schema: Mapping[str, PropertyDef] = PROPERTY_BY_NAME,
                 query_properties: tuple[str, ...] = QUERY_PROPERTIES) -> SearchRequest:
    """Check a search body against HubSpot's limits and the object's properties
    (`schema`: the contacts' unless given); raise a 400 ApiFailure otherwise."""
    if not isinstance(body, Mapping):
        raise validation_error("Invalid input JSON: expected an object")
    groups_raw = body.get("filterGroups") or []
    loose = body.get("filters")
    if loose:  # a top-level list (older clients, e.g. Airbyte's): one AND group, as HubSpot
        if groups_raw:
            raise validation_error("Use either filterGroups or a top-level filters list, "
                                   "not both")
        if not isinstance(loose, list):
            raise validation_error("Invalid input JSON: 'filters' must be a list")
        groups_raw = [{"filters": loose}]
    if len(groups_raw) > MAX_FILTER_GROUPS:
        raise validation_error(f"Too many filter groups: at most {MAX_FILTER_GROUPS}")
    groups: list[list[Filter]] = []
    for group in groups_raw:
        filters = list(group.get("filters") or []) if isinstance(group, Mapping) else []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP}")
        groups.append([_filter(item, schema) for item in filters])
    if sum(len(group) for group in groups) > MAX_FILTERS:
        raise validation_error(f"Too many filters: at most {MAX_FILTERS} in all")
    query = body.get("query")
    if query is not None and len(str(query)) > MAX_QUERY_CHARS:
        raise validation_error(f"query is longer than {MAX_QUERY_CHARS} characters")
    limit = _int(body.get("limit", 10), "limit")
    if not 0 < limit <= max_limit:
        raise validation_error(f"limit must be between 1 and {max_limit}")
    after = body.get("after")
    offset = _int(after, "after") if after not in (None, "") else 0
    properties = body.get("properties")
    sorts = [_sort(s, schema) for s in body.get("sorts") or []]
    return SearchRequest(groups, sorts, [str(p) for p in properties] if properties else None,
                         limit, offset, str(query) if query else None,
                         {name: schema[name].type for name, _ in sorts}, query_properties)


def _int(value: object, name: str) -> int:
    try:
        return int(str(value))
    except ValueError as error:
        raise validation_error(f"{name} must be an integer, got '{value}'") from error


def _filter(item: object, schema: Mapping[str, PropertyDef]) -> Filter:
    if not isinstance(item, Mapping) or "propertyName" not in item:
        raise validation_error("Each filter needs a propertyName and an operator")
    if item["propertyName"] not in schema:
        raise validation_error(f"Unknown property in filter: {item['propertyName']}")
    operator = item.get("operator", "EQ")
    if operator not in _OPERATORS:
        raise validation_error(f"Unknown filter operator: {item.get('operator')}")
    name = str(item["propertyName"])
    return Filter(name, schema[name].type, str(operator), item.get("value"),
                  item.get("highValue"), tuple(item.get("values") or ()),
                  str(item.get("value", "")).lower().strip("*"))


def _sort(item: object, schema: Mapping[str, PropertyDef]) -> tuple[str, bool]:
    """Sorts arrive as objects from clients and as strings ("-createdate") from scripts."""
    if isinstance(item, Mapping):
        name = str(item.get("propertyName", ""))
        descending = str(item.get("direction", "ASCENDING")).upper() == "DESCENDING"
    else:
        text = str(item)
        name, descending = text.lstrip("-"), text.startswith("-")
    if name not in schema:
        raise validation_error(f"Unknown property in sorts: {name}")
    return name, descending


def _typed(kind: str, name: str, value: object) -> Comparable:
    if kind == "number":
        try:
            return float(str(value))
        except ValueError as error:
            raise validation_error(f"'{value}' is not a number for {name}") from error
    if kind == "datetime":
        return parse_instant(value)
    return str(value).lower()


Check = Callable[[Comparable | None, Filter, str], bool]


def _compare(op: Callable[[Comparable, Comparable], bool]) -> Check:
    def check(have: Comparable | None, item: Filter, name: str) -> bool:
        return have is not None and op(have, _typed(item.kind, name, item.value))
    return check


def _in(have: Comparable | None, item: Filter, name: str) -> bool:
    return have is not None and have in [_typed(item.kind, name, v) for v in item.values]


def _between(have: Comparable | None, item: Filter, name: str) -> bool:
    if have is None:
        return False
    low, high = (_typed(item.kind, name, item.value),
                 _typed(item.kind, name, item.high_value))
    return bool(low <= have <= high)  # type: ignore[operator]


def _contains(have: Comparable | None, item: Filter, name: str) -> bool:
    return have is not None and item.token in str(have)


_OPERATORS: dict[str, Check] = {
    "EQ": _compare(lambda a, b: a == b),
    "NEQ": lambda have, item, name: have is None or have != _typed(item.kind, name,
                                                                   item.value),
    "GT": _compare(lambda a, b: a > b),  # type: ignore[operator]
    "GTE": _compare(lambda a, b: a >= b),  # type: ignore[operator]
    "LT": _compare(lambda a, b: a < b),  # type: ignore[operator]
    "LTE": _compare(lambda a, b: a <= b),  # type: ignore[operator]
    "BETWEEN": _between,
    "IN": _in,
    "NOT_IN": lambda have, item, name: not _in(have, item, name),
    "HAS_PROPERTY": lambda have, item, name: have is not None,
    "NOT_HAS_PROPERTY": lambda have, item, name: have is None,
    "CONTAINS_TOKEN": _contains,
    "NOT_CONTAINS_TOKEN": lambda have, item, name: not _contains(have, item, name),
}


def _value(record: Searchable, kind: str, name: str) -> Comparable | None:
    raw = record.properties.get(name)
    return None if raw in (None, "") else _typed(kind, name, raw)


def _matches(record: Searchable, request: SearchRequest) -> bool:
    if request.query:
        needle = request.query.lower()
        if not any(needle in str(record.properties.get(p) or "").lower()
                   for p in request.query_properties):
            return False
    if not request.filter_groups:
        return True
    return any(all(_OPERATORS[f.operator](_value(record, f.kind, f.property), f, f.property)
                   for f in group)
               for group in request.filter_groups)


class _Descending:
    """A sort value compared the other way round (for DESCENDING sorts)."""

    __slots__ = ("value",)

    def __init__(self, value: Comparable) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def _sort_key(request: SearchRequest) -> Callable[[Searchable], tuple[object, ...]]:
    """Each sort in turn (records without a value last), then hs_object_id ascending."""
    def key(record: Searchable) -> tuple[object, ...]:
        parts: list[object] = []
        for name, descending in request.sorts:
            value = _value(record, request.kinds[name], name)
            if value is None:
                parts.append((1, 0))
            else:
                parts.append((0, _Descending(value) if descending else value))
        parts.append(int(record.id))
        return tuple(parts)
    return key


def run_search(contacts: Iterable[R], request: SearchRequest,
               keep: int) -> tuple[int, list[R]]:
    """(how many contacts match, the first `keep` of them in the requested order).

    `contacts` must come in id order (hs_object_id ascending, the default order). Only
    `keep` contacts are held at any time, however many match.
    """
    total = 0

    def matching() -> Iterator[R]:
        nonlocal total
        for contact in contacts:
            if _matches(contact, request):
                total += 1
                yield contact
    found = matching()
    if request.sorts:
        first = heapq.nsmallest(keep, found, key=_sort_key(request))
    else:
        first = list(islice(found, keep))
        for _ in found:  # count the rest
            pass
    return total, first
