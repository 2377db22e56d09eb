"""Salesforce answers as typed records, read once where simple-salesforce hands them over.

simple-salesforce returns each answer as decoded JSON it leaves untyped. The readers here turn
one into the shape syncer reads (a query page, the SaveResults of a collection write, a
describe's fields, a Bulk 2.0 job), checking the parts it uses, so the code past them
reads typed values and an answer of another shape fails where it arrives, naming the
request and the part. A SOQL record stays a JSON object (`Row`): its fields are what the
query selected, read by mapping.py's functions, which narrow each value they use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NotRequired, TypedDict

from connectors import answer_shapes
from syncer.domain.json_values import JSONObject, JSONValue

#: one SOQL record: the selected fields by API name (a relationship as a nested record)
Row = JSONObject


class QueryPage(TypedDict):
    """One page of a SOQL query (query, queryAll or a nextRecordsUrl)."""

    records: list[Row]
    totalSize: int
    done: bool
    nextRecordsUrl: NotRequired[str]


class SaveError(TypedDict):
    statusCode: str
    message: str
    fields: list[str]


class SaveResult(TypedDict):
    """One record's outcome in an sObject Collections write."""

    id: str | None
    success: bool
    errors: list[SaveError]


class BulkJob(TypedDict):
    """A Bulk API 2.0 query job as its info request describes it."""

    id: str
    state: str | None
    errorMessage: str | None


class CompositeResult(TypedDict):
    """One subrequest's answer inside a Composite response: its body (a query page, or a
    Salesforce error list), its status and the referenceId it was sent with."""

    body: JSONValue
    httpStatusCode: int
    referenceId: str


class AnswerShapeError(answer_shapes.AnswerShapeError):
    """A Salesforce answer without a part syncer reads (or of another type)."""


_shapes = answer_shapes.AnswerShapes("Salesforce", AnswerShapeError)
_object = _shapes.json_object


def _objects(value: object, where: str) -> list[JSONObject]:
    return [_object(item, f"{where}[{index}]")
            for index, item in enumerate(_shapes.json_list(value, where))]


def _count(value: JSONValue, where: str) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    raise AnswerShapeError(f"Salesforce answered {where} with {value!r}, not a number")


def query_page(answer: object, where: str) -> QueryPage:
    """A query answer: its records (each a JSON object), size and where it goes on."""
    data = _object(answer, where)
    found: QueryPage = {"records": _objects(data.get("records", []), f"{where}: records"),
                        "totalSize": _count(data.get("totalSize", 0), f"{where}: totalSize"),
                        "done": data.get("done", True) is not False}
    following = data.get("nextRecordsUrl")
    if isinstance(following, str) and following:
        found["nextRecordsUrl"] = following
    return found


def composite_results(answer: object, where: str) -> list[CompositeResult]:
    """A Composite answer: its `compositeResponse`, one result per subrequest in order."""
    data = _object(answer, where)
    results: list[CompositeResult] = []
    for index, item in enumerate(_objects(data.get("compositeResponse"),
                                          f"{where}: compositeResponse")):
        at = f"{where}: compositeResponse[{index}]"
        reference = item.get("referenceId")
        if not isinstance(reference, str):
            raise AnswerShapeError(f"Salesforce answered {at}.referenceId with "
                                   f"{reference!r}, not a string")
        results.append({"body": item.get("body"), "referenceId": reference,
                        "httpStatusCode": _count(item.get("httpStatusCode"),
                                                 f"{at}.httpStatusCode")})
    return results


def _save_error(value: JSONObject) -> SaveError:
    fields = value.get("fields")
    return {"statusCode": str(value.get("statusCode", "UNKNOWN")),
            "message": str(value.get("message", "")),
            "fields": [str(f) for f in fields] if isinstance(fields, list) else []}


def save_results(answer: object, where: str) -> list[SaveResult] | None:
    """The SaveResults of a composite/sobjects write, one per record in order; None when
    the answer is not a list (the caller says how many it expected)."""
    if not isinstance(answer, list):
        return None
    results: list[SaveResult] = []
    for index, item in enumerate(answer):
        data = _object(item, f"{where}[{index}]")
        errors = data.get("errors")
        results.append({"id": None if data.get("id") is None else str(data.get("id")),
                        "success": bool(data.get("success")),
                        "errors": [_save_error(e) for e in _objects(
                            errors if isinstance(errors, list) else [],
                            f"{where}[{index}].errors")]})
    return results


def described_fields(answer: object, where: str) -> list[JSONObject]:
    """The `fields` of a describe() answer (none when it has none)."""
    data = _object(answer if answer is not None else {}, where)
    return _objects(data.get("fields", []), f"{where}: fields")


def bulk_job(answer: object, where: str) -> BulkJob:
    data = _object(answer, where)
    message = data.get("errorMessage")
    state = data.get("state")
    return {"id": str(data.get("id") or ""), "state": None if state is None else str(state),
            "errorMessage": None if message is None else str(message)}


def first_error(content: object) -> tuple[str, str]:
    """(errorCode, message) from a Salesforce error body (a list of errors, an OAuth
    error object, or text)."""
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        return str(first.get("errorCode", "UNKNOWN")), str(first.get("message", ""))
    if isinstance(content, Mapping):
        return str(content.get("error", "UNKNOWN")), str(content.get("error_description", ""))
    return "UNKNOWN", ""
