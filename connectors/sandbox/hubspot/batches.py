"""The batch conventions every HubSpot object's batch endpoints share (contacts, companies,
deals): the 207 answer with per-input errors naming their ids in `context.ids`, and the one
batch update they all answer the same way (shared/specs/HUBSPOT.md).

Kept apart from the contact and generic-object handlers so a batch rule (a duplicate id,
the order of errors, a per-record fault) is written once for every object type.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from typing import Protocol

from werkzeug.wrappers import Request

from connectors.sandbox.faults import RequestPlan
from connectors.sandbox.hubspot.http import (
    Answer,
    ApiFailure,
    Json,
    iso_millis,
    json_body,
    record_failure,
    validation_error,
)
from connectors.sandbox.hubspot.validation import InputRejected
from syncer.domain.json_values import JSONObject, JSONValue


def batch_inputs(request: Request, batch_max: int) -> tuple[JSONObject, list[JSONValue]]:
    """A batch request's body and its `inputs`; a 400 when `inputs` is no list or holds
    more than `batch_max`."""
    body = json_body(request)
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(inputs, list):
        raise validation_error("Invalid input JSON: 'inputs' must be a list")
    if len(inputs) > batch_max:
        raise validation_error(f"Too many inputs: a batch accepts at most "
                               f"{batch_max}, got {len(inputs)}")
    return body, inputs


def input_ids(inputs: Sequence[object]) -> list[str]:
    """Each input's `id` as text, in order ("" for an input that is no object)."""
    return [str(item.get("id", "")) if isinstance(item, dict) else "" for item in inputs]


def echo_trace(result: Json, item: object) -> Json:
    """A created record's result with its input's `objectWriteTraceId`, when it had one
    (as HubSpot echoes it)."""
    trace = item.get("objectWriteTraceId") if isinstance(item, dict) else None
    if trace is not None:
        result["objectWriteTraceId"] = str(trace)
    return result


def rejected_failure(rejected: InputRejected) -> ApiFailure:
    """A refused write's 400: the message listing each bad value, and `errors` naming each
    property in `context.propertyName`."""
    return ApiFailure(400, rejected.category, rejected.message,
                      extra={"errors": rejected.details()})


def batch_error(category: str, message: str, ids: list[str]) -> Json:
    """One entry of a 207's `errors` (the empty lists and maps sent explicitly)."""
    return {"status": "error", "category": category, "message": message,
            "context": {"ids": ids}, "errors": [], "links": {}}


def batch_response(results: list[Json], errors: list[Json], started: str,
                   ok_status: int) -> tuple[int, Json]:
    body: Json = {"status": "COMPLETE", "results": results, "startedAt": started,
                  "completedAt": iso_millis(datetime.now(timezone.utc))}
    if not errors:
        return ok_status, body
    body.update(numErrors=sum(_id_count(e) for e in errors), errors=errors)
    return 207, body


def _id_count(error: Json) -> int:
    """How many ids a `batch_error` names (its `context.ids`)."""
    context = error.get("context")
    ids = context.get("ids") if isinstance(context, dict) else None
    return len(ids) if isinstance(ids, list) else 0


def input_properties(item: object) -> dict[str, object]:
    """An input's `properties` object, or the 400 HubSpot gives an input without one."""
    properties = item.get("properties") if isinstance(item, dict) else None
    if not isinstance(properties, dict):
        raise ApiFailure(400, "VALIDATION_ERROR",
                         "Invalid input JSON: each input needs a 'properties' object")
    return properties


class Updatable(Protocol):
    """The records of one object type, as a batch update writes them."""

    def exists(self, record_id: str) -> bool: ...

    def check(self, properties: dict[str, object]) -> dict[str, str | None]:
        """The values to write, or InputRejected naming each bad one."""
        ...

    def write(self, record_id: str, values: dict[str, str | None]) -> Json:
        """Write checked values; the record's answer JSON with those properties."""
        ...


def update_batch(inputs: Sequence[object], target: Updatable, plan: RequestPlan | None,
                 not_found_message: str,
                 lock: AbstractContextManager[object] | None = None,
                 value_details: bool = True) -> Answer:
    """A batch update: 200 when every input was written; else 207 with per-input errors
    (an unknown id, invalid values, an injected per-record fault), the written ones in
    `results`. Duplicate ids refuse the whole batch (400). `value_details`: an invalid
    value's error also names each property in its `errors` (the contacts endpoint keeps the
    shape its tests have always checked: that list empty, the properties in the message)."""
    ids = input_ids(inputs)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise validation_error(f"Duplicate IDs found in batch input: {duplicates}",
                               ids=duplicates)
    started = iso_millis(datetime.now(timezone.utc))
    results: list[Json] = []
    errors: list[Json] = []
    missing: list[str] = []
    with lock if lock is not None else nullcontext():
        for item, record_id in zip(inputs, ids, strict=True):
            if not isinstance(item, dict) or not target.exists(record_id):
                missing.append(record_id)  # an input that is no object has no id
                continue
            try:
                clean = target.check(dict(input_properties(item)))
            except InputRejected as rejected:
                error = batch_error(rejected.category, rejected.message, [record_id])
                errors.append({**error, "errors": rejected.details()} if value_details
                              else error)
                continue
            fault = plan.record_fault(record_id) if plan is not None else None
            if fault is not None:
                errors.append(batch_error(*record_failure(fault), [record_id]))
                continue
            results.append(target.write(record_id, clean))
    if missing:
        errors.insert(0, batch_error("OBJECT_NOT_FOUND", not_found_message, missing))
    return batch_response(results, errors, started, 200)
