"""The CRM search endpoint's request rules and filter semantics.

Integration tools page through search with `lastmodifieddate`/`hs_object_id` windows and
must cope with its limits (200 per page, 5 filter groups, 10 filters a group, 25 in all, no
result past the 10,000th), so the sandbox enforces the same rules and compares values by
the property's type: numbers as numbers, datetimes as instants, text case-insensitively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.hubspot.sandbox_http import parse_instant, validation_error
from connectors.hubspot.sandbox_schema import PROPERTY_BY_NAME
from connectors.hubspot.sandbox_state import Contact

MAX_LIMIT = 200
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
MAX_QUERY_CHARS = 3000
QUERY_PROPERTIES = ("email", "firstname", "lastname", "company", "hs_object_id")

Comparable = float | datetime | str


@dataclass(frozen=True, slots=True)
class SearchRequest:
    filter_groups: list[list[dict[str, Any]]]
    sorts: list[tuple[str, bool]]  # (property, descending)
    properties: list[str] | None
    limit: int
    offset: int
    query: str | None


def parse_search(body: Any) -> SearchRequest:
    """Check a search body against HubSpot's limits; raise a 400 ApiFailure otherwise."""
    if not isinstance(body, Mapping):
        raise validation_error("Invalid input JSON: expected an object")
    groups_raw = body.get("filterGroups") or []
    if len(groups_raw) > MAX_FILTER_GROUPS:
        raise validation_error(f"Too many filter groups: at most {MAX_FILTER_GROUPS}")
    groups: list[list[dict[str, Any]]] = []
    for group in groups_raw:
        filters = list(group.get("filters") or []) if isinstance(group, Mapping) else []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP}")
        for item in filters:
            _check_filter(item)
        groups.append(filters)
    if sum(len(group) for group in groups) > MAX_FILTERS:
        raise validation_error(f"Too many filters: at most {MAX_FILTERS} in all")
    query = body.get("query")
    if query is not None and len(str(query)) > MAX_QUERY_CHARS:
        raise validation_error(f"query is longer than {MAX_QUERY_CHARS} characters")
    limit = _int(body.get("limit", 10), "limit")
    if not 0 < limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}")
    after = body.get("after")
    offset = _int(after, "after") if after not in (None, "") else 0
    properties = body.get("properties")
    return SearchRequest(groups, [_sort(s) for s in body.get("sorts") or []],
                         [str(p) for p in properties] if properties else None,
                         limit, offset, str(query) if query else None)


def _int(value: object, name: str) -> int:
    try:
        return int(str(value))
    except ValueError as error:
        raise validation_error(f"{name} must be an integer, got '{value}'") from error


def _check_filter(item: Any) -> None:
    if not isinstance(item, Mapping) or "propertyName" not in item:
        raise validation_error("Each filter needs a propertyName and an operator")
    if item["propertyName"] not in PROPERTY_BY_NAME:
        raise validation_error(f"Unknown property in filter: {item['propertyName']}")
    if item.get("operator", "EQ") not in _OPERATORS:
        raise validation_error(f"Unknown filter operator: {item.get('operator')}")


def _sort(item: Any) -> tuple[str, bool]:
    """Sorts arrive as objects from clients and as strings ("-createdate") from scripts."""
    if isinstance(item, Mapping):
        name = str(item.get("propertyName", ""))
        descending = str(item.get("direction", "ASCENDING")).upper() == "DESCENDING"
    else:
        text = str(item)
        name, descending = text.lstrip("-"), text.startswith("-")
    if name not in PROPERTY_BY_NAME:
        raise validation_error(f"Unknown property in sorts: {name}")
    return name, descending


def _typed(name: str, value: object) -> Comparable:
    kind = PROPERTY_BY_NAME[name].type
    if kind == "number":
        try:
            return float(str(value))
        except ValueError as error:
            raise validation_error(f"'{value}' is not a number for {name}") from error
    if kind == "datetime":
        return parse_instant(value)
    return str(value).lower()


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Comparable | None, dict[str, Any],
                                                          str], bool]:
    def check(have: Comparable | None, item: dict[str, Any], name: str) -> bool:
        return have is not None and op(have, _typed(name, item.get("value")))
    return check


def _in(have: Comparable | None, item: dict[str, Any], name: str) -> bool:
    return have is not None and have in [_typed(name, v) for v in item.get("values") or []]


def _between(have: Comparable | None, item: dict[str, Any], name: str) -> bool:
    if have is None:
        return False
    low, high = _typed(name, item.get("value")), _typed(name, item.get("highValue"))
    return bool(low <= have <= high)  # type: ignore[operator]


def _contains(have: Comparable | None, item: dict[str, Any], name: str) -> bool:
    token = str(item.get("value", "")).lower().strip("*")
    return have is not None and token in str(have)


_OPERATORS: dict[str, Callable[[Comparable | None, dict[str, Any], str], bool]] = {
    "EQ": _compare(lambda a, b: a == b),
    "NEQ": lambda have, item, name: have is None or have != _typed(name, item.get("value")),
    "GT": _compare(lambda a, b: a > b),
    "GTE": _compare(lambda a, b: a >= b),
    "LT": _compare(lambda a, b: a < b),
    "LTE": _compare(lambda a, b: a <= b),
    "BETWEEN": _between,
    "IN": _in,
    "NOT_IN": lambda have, item, name: not _in(have, item, name),
    "HAS_PROPERTY": lambda have, item, name: have is not None,
    "NOT_HAS_PROPERTY": lambda have, item, name: have is None,
    "CONTAINS_TOKEN": _contains,
    "NOT_CONTAINS_TOKEN": lambda have, item, name: not _contains(have, item, name),
}


def _value(contact: Contact, name: str) -> Comparable | None:
    raw = contact.properties.get(name)
    return None if raw in (None, "") else _typed(name, raw)


def _matches(contact: Contact, request: SearchRequest) -> bool:
    if request.query:
        needle = request.query.lower()
        if not any(needle in str(contact.properties.get(p) or "").lower()
                   for p in QUERY_PROPERTIES):
            return False
    if not request.filter_groups:
        return True
    return any(all(_OPERATORS[f.get("operator", "EQ")](
        _value(contact, f["propertyName"]), f, f["propertyName"]) for f in group)
        for group in request.filter_groups)


def run_search(contacts: Iterable[Contact], request: SearchRequest) -> list[Contact]:
    """Every matching contact in the requested order (hs_object_id ascending by default)."""
    found = [c for c in contacts if _matches(c, request)]
    found.sort(key=lambda c: int(c.id))
    for name, descending in reversed(request.sorts):
        present = [c for c in found if _value(c, name) is not None]
        missing = [c for c in found if _value(c, name) is None]
        present.sort(key=lambda c: _value(c, name), reverse=descending)  # type: ignore[arg-type,return-value]
        found = present + missing
    return found
