"""Engagements in the HubSpot sandbox: calls, meetings, emails, notes and tasks a rep logs
on a contact, served on their real paths (issue 20, item 2).

    POST /crm/v3/objects/{calls|meetings|emails|notes|tasks}/search
         filterGroups on hs_lastmodifieddate, hs_createdate, hs_timestamp,
         hubspot_owner_id, hs_object_id (EQ, GT, GTE, LT, LTE); sorts on the same; limit
         up to 200; `after` paging; `properties` (default: hs_createdate,
         hs_lastmodifieddate, hs_object_id)
    GET  /crm/v3/objects/{type}?limit&after&properties&associations=contacts
    GET  /crm/v3/objects/{type}/{id}
    POST /crm/v4/associations/{type}/contacts/batch/read  {"inputs": [{"id": ...}]}
         (up to 1,000 inputs; an id with no contact is left out, as HubSpot does)

Object type ids (0-48 calls, 0-47 meetings, 0-49 emails, 0-46 notes, 0-27 tasks) work as
the names do. The store starts empty: the world seeds no engagements; the control API's
`log_activity` (connectors/sandbox/hubspot/engagement_controls.py) makes them.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from werkzeug.wrappers import Request

from connectors.sandbox.hubspot.http import (
    Answer,
    ApiFailure,
    Json,
    iso_millis,
    json_body,
    json_list,
    not_found,
    parse_instant,
    property_names,
    validation_error,
)

#: object type -> (its id, the property holding its title, the contact association typeId)
TYPES: Mapping[str, tuple[str, str, int]] = {
    "calls": ("0-48", "hs_call_title", 194), "meetings": ("0-47", "hs_meeting_title", 200),
    "emails": ("0-49", "hs_email_subject", 198), "notes": ("0-46", "hs_note_body", 202),
    "tasks": ("0-27", "hs_task_subject", 204)}
ALIASES: Mapping[str, str] = {
    **{name: name for name in TYPES}, **{spec[0]: name for name, spec in TYPES.items()},
    **{name[:-1]: name for name in TYPES}}
#: an association type's category (not an error category)
DEFINED_BY_HUBSPOT = "HUBSPOT_DEFINED"
TIME_PROPERTIES = frozenset({"hs_lastmodifieddate", "hs_createdate", "hs_timestamp"})
FILTERABLE = TIME_PROPERTIES | {"hubspot_owner_id", "hs_object_id"}
DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
MAX_LIMIT, MAX_INPUTS = 200, 1000
#: a property or filter value as engagements compare it (see `_typed`): an instant for the
#: time properties, a number for hs_object_id, text for the others
Comparable = datetime | int | str
_COMPARE: Mapping[str, Callable[[Comparable, Comparable], bool]] = {
    "EQ": operator.eq, "NEQ": operator.ne, "GT": operator.gt, "GTE": operator.ge,
    "LT": operator.lt, "LTE": operator.le}


def object_type(name: str) -> str | None:
    """The engagement type a path segment names (calls, 0-48, call), or None."""
    return ALIASES.get(name.lower())


@dataclass
class Engagement:
    id: str
    kind: str
    properties: dict[str, str]
    contacts: list[str] = field(default_factory=list)


def _typed(name: str, value: object) -> Comparable:
    if name in TIME_PROPERTIES:
        return parse_instant(value)
    if name == "hs_object_id":
        try:
            return int(str(value))
        except ValueError:
            raise validation_error(f"'{value}' is not a number for hs_object_id") from None
    return str(value)


class Engagements:
    """The portal's engagements by type, and their contact associations."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(80_000_000_001)
        self.by_type: dict[str, dict[str, Engagement]] = {name: {} for name in TYPES}

    def log(self, kind: str, contact_id: str, owner_id: str,
            properties: Mapping[str, str]) -> Engagement:
        """A new engagement on one contact, stamped now."""
        now = iso_millis(self._clock().astimezone(timezone.utc))
        with self._lock:
            record_id = str(next(self._ids))
            props = {"hs_object_id": record_id, "hs_createdate": now,
                     "hs_lastmodifieddate": now, "hs_timestamp": now,
                     "hubspot_owner_id": owner_id, **properties}
            engagement = Engagement(record_id, kind, props, [contact_id])
            self.by_type[kind][record_id] = engagement
            return engagement

    def _all(self, kind: str) -> list[Engagement]:
        with self._lock:
            return sorted(self.by_type[kind].values(), key=lambda e: int(e.id))

    # -- handlers (HubSpotApi delegates here; `kind` is already resolved) ----------------
    def search(self, kind: str, request: Request) -> Answer:
        body = json_body(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected an object")
        groups = [_filters(g) for g in json_list(body.get("filterGroups"), "filterGroups")]
        if body.get("filters"):
            groups.append(_filters({"filters": body["filters"]}))
        limit, offset = _limit(body.get("limit", 10)), _offset(body.get("after"))
        sorts = [(str(s.get("propertyName")), str(s.get("direction", "ASCENDING")).upper()
                  == "DESCENDING") for s in json_list(body.get("sorts"), "sorts")
                 if isinstance(s, Mapping)]
        for name, _ in sorts:
            _check_property(name)
        found = [e for e in self._all(kind)
                 if not groups or any(all(_passes(e, f) for f in g) for g in groups)]
        for name, descending in reversed(sorts):
            found.sort(key=_sort_key(name), reverse=descending)
        wanted = property_names(body.get("properties"))
        results = [self.json(e, wanted) for e in found[offset:offset + limit]]
        answer: Json = {"total": len(found), "results": results}
        if offset + limit < len(found):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, answer

    def listing(self, kind: str, request: Request) -> Answer:
        limit, offset = _limit(request.args.get("limit", 10), 100), _offset(
            request.args.get("after"))
        wanted = [p for value in request.args.getlist("properties") for p in value.split(",")]
        with_contacts = "contacts" in request.args.get("associations", "").split(",")
        found = self._all(kind)
        results = [self.json(e, wanted or None, with_contacts)
                   for e in found[offset:offset + limit]]
        answer: Json = {"results": results}
        if offset + limit < len(found):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, answer

    def get(self, kind: str, record_id: str, request: Request) -> Answer:
        with self._lock:
            engagement = self.by_type[kind].get(record_id)
        if engagement is None:
            raise not_found(f"Object not found.  objectId are usually numeric: {record_id}")
        wanted = [p for value in request.args.getlist("properties") for p in value.split(",")]
        return 200, self.json(engagement, wanted or None)

    def associations(self, kind: str, to_type: str, request: Request) -> Answer:
        if to_type.lower() not in ("contacts", "contact", "0-1"):
            raise validation_error(f"The sandbox associates {kind} with contacts only, "
                                   f"not {to_type}")
        body = json_body(request)
        inputs = body.get("inputs") if isinstance(body, Mapping) else None
        if not isinstance(inputs, list) or len(inputs) > MAX_INPUTS:
            raise validation_error(f"inputs must be a list of at most {MAX_INPUTS} objects")
        type_id = TYPES[kind][2]
        now = iso_millis(datetime.now(timezone.utc))
        with self._lock:
            chosen = [self.by_type[kind].get(str(i.get("id") if isinstance(i, Mapping) else ""))
                      for i in inputs]
            results = [{"from": {"id": e.id}, "to": [
                {"toObjectId": int(c), "associationTypes": [
                    {"category": DEFINED_BY_HUBSPOT, "typeId": type_id, "label": None}]}
                for c in e.contacts]} for e in chosen if e is not None and e.contacts]
        return 200, {"status": "COMPLETE", "results": results, "startedAt": now,
                     "completedAt": now}

    @staticmethod
    def json(engagement: Engagement, wanted: list[str] | None,
             with_contacts: bool = False) -> Json:
        names = list(DEFAULT_PROPERTIES) + [w for w in wanted or [] if w not in
                                            DEFAULT_PROPERTIES]
        props = engagement.properties
        data: Json = {"id": engagement.id, "properties": {n: props.get(n) for n in names},
                      "createdAt": props["hs_createdate"],
                      "updatedAt": props["hs_lastmodifieddate"], "archived": False}
        if with_contacts:
            label = f"{engagement.kind[:-1]}_to_contact"
            data["associations"] = {"contacts": {"results": [
                {"id": c, "type": label} for c in engagement.contacts]}}
        return data


def _sort_key(name: str) -> Callable[[Engagement], tuple[bool, Comparable]]:
    """Sort by one property; engagements without it first (they are never stamped)."""
    def key(engagement: Engagement) -> tuple[bool, Comparable]:
        value = engagement.properties.get(name)
        return (value is not None, _typed(name, value) if value is not None else 0)
    return key


def _check_property(name: str) -> None:
    if name not in FILTERABLE:
        raise validation_error(f"The sandbox filters and sorts engagements on "
                               f"{', '.join(sorted(FILTERABLE))} only, not {name}")


def _filters(group: object) -> list[tuple[str, str, Comparable]]:
    items = group.get("filters") if isinstance(group, Mapping) else None
    if not isinstance(items, list):
        raise validation_error("Each filter group needs a filters list")
    found = []
    for item in items:
        if not isinstance(item, Mapping):
            raise validation_error("Each filter must be an object with a propertyName")
        name, operator = str(item.get("propertyName")), str(item.get("operator", "EQ"))
        _check_property(name)
        if operator not in _COMPARE:
            raise validation_error(f"Unknown filter operator: {operator}")
        found.append((name, operator, _typed(name, item.get("value"))))
    return found


def _passes(engagement: Engagement, check: tuple[str, str, Comparable]) -> bool:
    name, operator, value = check
    have = engagement.properties.get(name)
    return have is not None and _COMPARE[operator](_typed(name, have), value)


def _limit(value: object, most: int = MAX_LIMIT) -> int:
    try:
        limit = int(str(value))
    except ValueError:
        raise validation_error(f"limit must be an integer, got '{value}'") from None
    if not 0 < limit <= most:
        raise validation_error(f"limit must be between 1 and {most}")
    return limit


def _offset(value: object) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(str(value))
    except ValueError:
        raise validation_error(f"after must be an integer, got '{value}'") from None


def handler(engagements: Engagements, endpoint: str, args: dict[str, str]
            ) -> Callable[[Request, dict[str, str]], Answer] | None:
    """The engagement handler for a matched route whose object type is an engagement, or
    None (the route is then the contacts' one)."""
    kind = object_type(args.get("object_type", ""))
    if kind is None:
        return None
    if endpoint == "search":
        return lambda request, _: engagements.search(kind, request)
    if endpoint == "list_contacts":
        return lambda request, _: engagements.listing(kind, request)
    if endpoint == "get_contact":
        return lambda request, a: engagements.get(kind, a["record_id"], request)
    if endpoint == "association_batch_read":
        return lambda request, a: engagements.associations(kind, a["to_type"], request)
    raise ApiFailure(405, "VALIDATION_ERROR",
                     f"The sandbox serves {kind} for reading only (logged through its "
                     "control API)")
