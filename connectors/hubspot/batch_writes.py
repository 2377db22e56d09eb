"""Contact writes in HubSpot's batches: create, read by email (to link a contact that
exists) or by id (a focused re-read, by_ids.py) and update, each one request through the
connector's retry policy.

A 207 names the failed inputs; a 400 for a whole batch is bisected to its bad inputs; records
refused as rate limited are sent again after the policy's wait (never dead-lettered).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from hubspot.crm.contacts import (  # type: ignore[import-untyped]
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
)

from connectors.hubspot import mapping
from connectors.hubspot.answers import CrmObject, batch_answer
from connectors.hubspot.creation import BatchAnswer
from connectors.hubspot.errors import RequestRejected, property_names
from connectors.hubspot.raw import Answer, GeneratedApi, RawResponse, answer, parse_datetime
from connectors.retry import RetryPolicy
from syncer.domain.api_usage import ApiUsage
from syncer.domain.json_values import JSONObject
from syncer.domain.types import PushResult

#: one request through the connector's retry policy: (what, request) -> (data, status)
Call = Callable[[str, Callable[[], Answer]], tuple[JSONObject, int]]
#: Error categories of a batch input that a later attempt may get through.
RETRYABLE_CATEGORIES = frozenset({"RATE_LIMITS", "LOCKED", "INTERNAL_ERROR", "TIMEOUT"})


class BatchApi(GeneratedApi, Protocol):
    """The client's contacts (or companies) batch API (`batch_api`), as syncer calls it:
    each request with `_preload_content=False` (raw.py)."""

    def create_with_http_info(self, body: object, **options: object) -> RawResponse: ...

    def read_with_http_info(self, body: object, **options: object) -> RawResponse: ...

    def update_with_http_info(self, body: object, **options: object) -> RawResponse: ...


class ContactWrites:
    """The writing half of HubSpotConnector over the contacts batch API (`batch`); the
    companies batch API takes the same update batches (`object_type` "companies": only
    push_chunk is used there)."""

    def __init__(self, call: Call, batch: BatchApi, timeout: float, retry: RetryPolicy,
                 usage: ApiUsage, object_type: str = "contacts") -> None:
        self._call = call
        self.object_type = object_type
        self.batch = batch
        self._timeout = timeout
        self._retry = retry
        self.usage = usage
        #: what the client's models check their values by: handed to each model built here,
        #: which otherwise deep-copies a default Configuration of its own (2.6% of syncer's
        #: CPU in a full sync went to those copies, one per contact written)
        self._models = batch.api_client.configuration
        #: the earliest and latest modification stamps HubSpot gave our writes (its answers
        #: carry updatedAt): the run's echo window (syncer/run/echo.py), at no extra call
        self.stamps: tuple[datetime, datetime] | None = None

    def _note_stamps(self, results: list[CrmObject]) -> None:
        stamps = [parse_datetime(stamp) for r in results if (stamp := r.get("updatedAt"))]
        if stamps:
            low, high = min(stamps), max(stamps)
            if self.stamps is not None:
                low, high = min(low, self.stamps[0]), max(high, self.stamps[1])
            self.stamps = (low, high)

    def create_batch(self, inputs: list[tuple[str, dict[str, str]]]) -> BatchAnswer:
        body = BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            SimplePublicObjectBatchInputForCreate(properties=properties, associations=[],
                                                  object_write_trace_id=trace,
                                                  local_vars_configuration=self._models)
            for trace, properties in inputs], local_vars_configuration=self._models)
        body, status = self._call("contacts.batch_create", lambda: answer(self.batch
                                  .create_with_http_info(body, _preload_content=False,
                                                         _request_timeout=self._timeout)))
        data = batch_answer(body, "contacts.batch_create")
        self._note_stamps(data["results"])
        by_email = {props["email"].lower(): trace for trace, props in inputs}
        created: dict[str, str] = {}
        for result in data["results"]:
            email = (result["properties"].get("email") or "").lower()
            trace = result.get("objectWriteTraceId") or by_email.get(email)
            if trace is not None:
                created[trace] = result["id"]
        failed: dict[str, tuple[str, str]] = {}
        for error in data["errors"] if status == 207 else []:
            for trace in error["context"].get("objectWriteTraceId", []):
                failed[trace] = (mapping.error_code(error["category"], error["message"]),
                                 error["message"][:500])
        return BatchAnswer(created, failed)

    def find_by_email(self, emails: list[str]) -> dict[str, str]:
        """Contact id by lowercase email, for the emails HubSpot holds (one batch read by
        the unique `email` property; unknown emails are a 207's errors, ignored here)."""
        body = BatchReadInputSimplePublicObjectId(
            inputs=[{"id": email} for email in emails], id_property="email",
            properties=["email"], properties_with_history=[],
            local_vars_configuration=self._models)
        return {(r["properties"].get("email") or "").lower(): r["id"]
                for r in self._read(body) if r["properties"].get("email")}

    def read(self, ids: Sequence[str], fields: Sequence[str]) -> list[CrmObject]:
        """The contacts with these ids (at most 100) that exist now, with `fields`; ids
        HubSpot does not know (merged away, deleted) are a 207's errors, left out."""
        return self._read(BatchReadInputSimplePublicObjectId(
            inputs=[{"id": record_id} for record_id in ids], properties=list(fields),
            properties_with_history=[], local_vars_configuration=self._models))

    def _read(self, request: BatchReadInputSimplePublicObjectId) -> list[CrmObject]:
        body, _ = self._call("contacts.batch_read", lambda: answer(self.batch.read_with_http_info(
            request, archived=False, _preload_content=False, _request_timeout=self._timeout)))
        return batch_answer(body, "contacts.batch_read")["results"]

    def push_chunk(self, values: dict[str, dict[str, str | None]],
                    in_a_row: int = 0) -> dict[str, PushResult]:
        """One batch update. Records HubSpot refused as rate limited (a 207's RATE_LIMITS
        errors) are a rate-limit answer, not a failure: after the policy's wait they are
        sent again (never dead-lettered), until the run's allowance of waiting runs out."""
        body = BatchInputSimplePublicObjectBatchInput(inputs=[
            SimplePublicObjectBatchInput(id=record_id, properties=props,
                                         local_vars_configuration=self._models)
            for record_id, props in values.items()], local_vars_configuration=self._models)
        try:
            answered, status = self._call(f"{self.object_type}.batch_update",
                                          lambda: answer(self.batch.update_with_http_info(
                                              body, _preload_content=False,
                                              _request_timeout=self._timeout)))
        except RequestRejected as rejected:
            if len(values) == 1:  # HubSpot may refuse a whole batch for one bad input
                record_id = next(iter(values))
                return {record_id: PushResult(record_id, False, mapping.error_code(
                    rejected.category, rejected.message), rejected.message, False,
                    fields=rejected.error.fields)}
            items = list(values.items())
            half = len(items) // 2
            return {**self.push_chunk(dict(items[:half])),
                    **self.push_chunk(dict(items[half:]))}
        data = batch_answer(answered, f"{self.object_type}.batch_update")
        self._note_stamps(data["results"])
        outcome = {r["id"]: PushResult(r["id"], True) for r in data["results"]}
        limited: list[str] = []
        for error in data["errors"] if status == 207 else []:  # each names its context.ids
            code = mapping.error_code(error["category"], error["message"])
            retryable = error["category"] in RETRYABLE_CATEGORIES
            fields = property_names(error["message"], error["context"], error["errors"])
            for record_id in error["context"].get("ids", []):
                outcome[record_id] = PushResult(record_id, False, code, error["message"],
                                                retryable, fields)
                if error["category"] == "RATE_LIMITS" and record_id in values:
                    limited.append(record_id)
        unconfirmed = PushResult("", False, "UNCONFIRMED",
                                 "HubSpot reported neither success nor failure", True)
        result = {record_id: outcome.get(record_id) or replace(unconfirmed, record_id=record_id)
                  for record_id in values}
        if limited:
            self._retry.wait_for_rate_limit(self.usage, in_a_row + 1,
                                            f"{self.object_type}.batch_update: "
                                            f"{len(limited)} records refused as rate limited")
            result.update(self.push_chunk({i: values[i] for i in limited}, in_a_row + 1))
        return result
