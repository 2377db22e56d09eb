"""HubSpot answers as typed records: the shapes syncer reads, checked once where they arrive.

The connector decodes each answer as plain JSON (raw.py) and hands it to one reader here,
which checks the parts syncer reads and returns a TypedDict of HubSpot's own keys (a page
of CRM objects, a batch answer, an event, an owner, an association): past this point the
code reads typed values, and an answer of an unexpected shape is a ConnectorError naming
the request and the field, not a KeyError three calls later. Timestamps stay text until
read (`raw.parse_datetime`): most are never needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Generic, NotRequired, TypedDict, TypeGuard, TypeVar

from connectors import answer_shapes
from syncer.domain.json_values import JSONObject, JSONValue

R = TypeVar("R")
#: property name -> value as HubSpot sends it (text, or null when unset)
Properties = dict[str, str | None]


class NextPage(TypedDict):
    after: str


class Paging(TypedDict):
    next: NotRequired[NextPage]


class Page(TypedDict, Generic[R]):
    """A list or search answer: the records, the cursor of the next page, and (search
    only) how many match in all."""

    results: list[R]
    paging: NotRequired[Paging]
    total: NotRequired[int]


class CrmObject(TypedDict):
    """A contact, company or engagement (HubSpot's SimplePublicObject)."""

    id: str
    properties: Properties
    updatedAt: NotRequired[str]
    #: the input's trace id, on the records a batch create answers with
    objectWriteTraceId: NotRequired[str]


class BatchError(TypedDict):
    """One error of a 207 batch answer: `context` names the inputs it is about (`ids`,
    `objectWriteTraceId`), `errors` the details (properties named in their context)."""

    category: str
    message: str
    context: dict[str, list[str]]
    errors: list[JSONValue]


class BatchAnswer(TypedDict):
    """A batch create, read or update answer (200, 201 or 207)."""

    results: list[CrmObject]
    errors: list[BatchError]


class Event(TypedDict):
    """One event of the events API (a page view, a form submission, ...)."""

    id: str
    objectId: str
    eventType: str
    occurredAt: str
    properties: Properties


class Owner(TypedDict):
    id: str
    email: str | None
    firstName: str | None
    lastName: str | None
    archived: bool


Association = TypedDict("Association", {"from": str, "to": list[str]})
"""An engagement's id and the contact ids it is on (an associations v4 batch result)."""


class Property(TypedDict):
    name: str


class AnswerShapeError(answer_shapes.AnswerShapeError):
    """A HubSpot answer without a part syncer reads (or of another type)."""


_shapes = answer_shapes.AnswerShapes("HubSpot", AnswerShapeError,
                                     hint="; is base_url a HubSpot API?")
_object = _shapes.json_object
_list = _shapes.json_list


def _id(value: object, where: str) -> str:
    """An id as text (HubSpot sends ids as strings, some APIs as numbers)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise AnswerShapeError(f"HubSpot answered {where} with {value!r}, not an id")


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, list | dict | bool) else str(value)


def _all_text(values: JSONObject) -> TypeGuard[Properties]:
    return all(v is None or isinstance(v, str) for v in values.values())


def _properties(value: object, where: str) -> Properties:
    """A record's properties; a value that is not text (HubSpot sends text) becomes the
    text JSON would print for it."""
    found = _object(value if value is not None else {}, where)
    if _all_text(found):
        return found
    return {name: _text(v) for name, v in found.items()}


def crm_object(value: JSONValue, where: str) -> CrmObject:
    data = _object(value, where)
    record: CrmObject = {"id": _id(data.get("id"), f"{where}.id"),
                         "properties": _properties(data.get("properties"),
                                                   f"{where}.properties")}
    updated = data.get("updatedAt")
    if isinstance(updated, str):
        record["updatedAt"] = updated
    trace = data.get("objectWriteTraceId")
    if trace is not None:
        record["objectWriteTraceId"] = str(trace)
    return record


def event(value: JSONValue, where: str) -> Event:
    data = _object(value, where)
    occurred = data.get("occurredAt")
    if not isinstance(occurred, str):
        raise AnswerShapeError(f"HubSpot answered {where}.occurredAt with {occurred!r}, not "
                               "a time")
    return {"id": _id(data.get("id"), f"{where}.id"),
            "objectId": _id(data.get("objectId"), f"{where}.objectId"),
            "eventType": str(data.get("eventType") or ""), "occurredAt": occurred,
            "properties": _properties(data.get("properties"), f"{where}.properties")}


def owner(value: JSONValue, where: str) -> Owner:
    data = _object(value, where)
    return {"id": _id(data.get("id"), f"{where}.id"), "email": _text(data.get("email")),
            "firstName": _text(data.get("firstName")), "lastName": _text(data.get("lastName")),
            "archived": data.get("archived") is True}


def association(value: JSONValue, where: str) -> Association:
    data = _object(value, where)
    origin = _object(data.get("from"), f"{where}.from")
    targets = _list(data.get("to") or [], f"{where}.to")
    return {"from": _id(origin.get("id"), f"{where}.from.id"),
            "to": [_id(_object(t, f"{where}.to[{i}]").get("toObjectId"),
                       f"{where}.to[{i}].toObjectId") for i, t in enumerate(targets)]}


def property_definition(value: JSONValue, where: str) -> Property:
    return {"name": str(_object(value, where).get("name") or "")}


def page(body: JSONObject, where: str, read: Callable[[JSONValue, str], R]) -> Page[R]:
    """A list or search answer with each record read by `read` (crm_object, event, ...)."""
    found: Page[R] = {"results": [read(item, f"{where}: results[{index}]") for index, item
                                  in enumerate(_list(body.get("results") or [],
                                                     f"{where}: results"))]}
    after = next_after(body)
    if after is not None:
        found["paging"] = {"next": {"after": after}}
    total = body.get("total")
    if isinstance(total, int):
        found["total"] = total
    return found


def contact_page(body: JSONObject, where: str) -> Page[CrmObject]:
    """A page of contacts (list, search or batch read)."""
    return page(body, where, crm_object)


def next_after(body: JSONObject | Page[R]) -> str | None:
    """The `after` cursor of the next page, None on the last page."""
    paging = body.get("paging")
    following = paging.get("next") if isinstance(paging, dict) else None
    after = following.get("after") if isinstance(following, dict) else None
    return str(after) if after not in (None, "") else None


def batch_error(value: JSONValue, where: str) -> BatchError:
    data = _object(value, where)
    context = data.get("context")
    return {"category": str(data.get("category") or "UNKNOWN"),
            "message": str(data.get("message") or ""),
            "context": {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])]
                        for k, vs in (context.items() if isinstance(context, dict) else ())},
            "errors": _list(data.get("errors") or [], f"{where}.errors")}


def batch_answer(body: JSONObject, where: str) -> BatchAnswer:
    """A batch answer: its results, and its errors (a 207's; none otherwise)."""
    return {"results": [crm_object(item, f"{where}: results[{index}]") for index, item
                        in enumerate(_list(body.get("results") or [], f"{where}: results"))],
            "errors": [batch_error(item, f"{where}: errors[{index}]") for index, item
                       in enumerate(_list(body.get("errors") or [], f"{where}: errors"))]}
