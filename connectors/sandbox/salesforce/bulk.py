"""Bulk API 2.0 query jobs, as the Salesforce sandbox serves them under /jobs/query.

The real resources and shapes (Bulk API 2.0 and Bulk API Developer Guide, query jobs):
- POST `jobs/query` `{"operation": "query" | "queryAll", "query": "SELECT ..."}` answers the
  job info with `state` UploadComplete; a query Bulk 2.0 refuses (COUNT(), GROUP BY,
  OFFSET, an unknown object or field) is 400 INVALIDJOB.
- GET `jobs/query/<id>` is the job info; each poll moves a queued job on: UploadComplete ->
  InProgress -> JobComplete (the query runs then), or Failed with `errorMessage`.
- GET `jobs/query/<id>/results?locator=&maxRecords=` answers CSV (header row, every value
  double-quoted, null as empty, datetimes as ...000Z) with `Sforce-NumberOfRecords` and
  `Sforce-Locator` (the string "null" on the last set); only for JobComplete.
- PATCH `jobs/query/<id>` `{"state": "Aborted"}` aborts a job that is UploadComplete or
  InProgress (400 otherwise); DELETE answers 204 for a JobComplete, Aborted or Failed job
  (400 "job is not terminated" otherwise); GET `jobs/query` lists the jobs.

Tests steer it through `BulkJobs` without the API: `hold()` keeps jobs created from then
on InProgress until `release()`, `fail_next_job()` makes the next job Failed, `created` and
`polled` are events set when a job is created or polled, and `jobs` is the job table
(deleted jobs stay in it, marked, so a test can see every job was closed).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from werkzeug.wrappers import Request, Response

from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.query import QueryEngine
from connectors.sandbox.salesforce.query_bind import BoundPath, bind_path
from connectors.sandbox.salesforce.results import QueryResult
from connectors.sandbox.salesforce.schema import (
    ObjectSchema,
    format_datetime,
    make_id,
    schema_for,
)
from syncer.domain.json_values import JSONValue

#: results per set when the client names no maxRecords (Salesforce sizes sets itself)
DEFAULT_MAX_RECORDS = 50_000
ACTIVE_STATES = frozenset({"UploadComplete", "InProgress"})
TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})


@dataclass
class QueryJob:
    """One query job as the org keeps it."""

    id: str
    operation: str
    query: str
    object: str
    created_at: datetime
    created_by: str
    api_version: str
    state: str = "UploadComplete"
    error_message: str | None = None
    polls: int = 0
    deleted: bool = False
    #: the result, computed when the job completes
    result: tuple[ObjectSchema, QueryResult, list[BoundPath]] | None = None
    #: results requests answered: (locator asked for, records in the set)
    result_sets: list[tuple[str, int]] = field(default_factory=list)
    fail: bool = False
    #: created while the sandbox held new jobs: stays InProgress until released
    held: bool = False
    #: records the query matched (kept after the job's data is deleted)
    processed: int = 0

    def info(self, now: datetime) -> dict[str, str | float]:
        body: dict[str, str | float] = {
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": self.created_by, "createdDate": format_datetime(self.created_at),
            "systemModstamp": format_datetime(now), "state": self.state,
            "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.api_version), "jobType": "V2Query",
            "lineEnding": "LF", "columnDelimiter": "COMMA"}
        if self.state == "JobComplete":
            body["numberRecordsProcessed"] = self.processed
        if self.error_message:
            body["errorMessage"] = self.error_message
        return body


def _error(status: int, code: str, message: str) -> Response:
    return Response(json.dumps([{"errorCode": code, "message": message}]), status=status,
                    mimetype="application/json")


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _locator(offset: int) -> str:
    """An opaque locator for the set starting at `offset` (Salesforce's are base64 too)."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str) -> int | None:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def csv_value(value: object) -> str:
    """A JSON value of the REST rendering as Bulk 2.0 writes it in CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and len(value) == 28 and value.endswith("+0000"):
        return value[:-5] + "Z"  # 2026-05-01T12:00:00.000+0000 -> ...000Z
    return str(value)


class BulkJobs:
    """The org's Bulk API 2.0 query jobs. Thread-safe."""

    def __init__(self, engine: QueryEngine, org_lock: AbstractContextManager[object],
                 clock: Callable[[], datetime],
                 user: Callable[[], str]) -> None:
        self.engine = engine
        self.org_lock = org_lock
        self.clock = clock
        self.user = user
        self.jobs: dict[str, QueryJob] = {}
        self.created = threading.Event()
        self.polled = threading.Event()
        self._held = threading.Event()
        self._lock = threading.Lock()
        self._count = 0
        self._fail_next: str | None = None

    # -- test controls -----------------------------------------------------------------

    def hold(self) -> None:
        """Jobs created from now on stay InProgress until release()."""
        self._held.set()

    def release(self, *, keep_held: bool = False) -> None:
        """New jobs run again; so do the held ones, unless `keep_held` (a job that must
        still be running when a test looks, e.g. one a killed client left)."""
        self._held.clear()
        if not keep_held:
            with self._lock:
                for job in self.jobs.values():
                    job.held = False

    def fail_next_job(self, message: str = "Job failed: internal server error") -> None:
        """The next job created ends Failed with this errorMessage."""
        with self._lock:
            self._fail_next = message

    def open_jobs(self) -> list[QueryJob]:
        """Jobs neither finished nor aborted (what a leaked job looks like)."""
        with self._lock:
            return [job for job in self.jobs.values() if job.state in ACTIVE_STATES]

    # -- the API -----------------------------------------------------------------------

    def handle(self, request: Request, version: str, parts: list[str]) -> Response:
        """`parts`: the path after jobs/query."""
        method = request.method
        if not parts:
            if method == "POST":
                return self._create(request, version)
            if method == "GET":
                return self._list()
            return _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. "
                          "Allowed are GET, POST")
        with self._lock:
            job = self.jobs.get(parts[0])
        if job is None or job.deleted:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 2 and parts[1] == "results" and method == "GET":
            return self._results(job, request, version)
        if len(parts) != 1:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if method == "GET":
            return self._poll(job)
        if method == "PATCH":
            return self._abort(job, request)
        if method == "DELETE":
            return self._delete(job)
        return _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. "
                      "Allowed are GET, PATCH, DELETE")

    def _create(self, request: Request, version: str) -> Response:
        body: JSONValue = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("operation") not in ("query", "queryAll"):
            return _error(400, "INVALIDJOB", "InvalidJob : operation must be query or queryAll")
        text = str(body.get("query") or "")
        try:
            parsed = soql.parse(text)
            if parsed.count_only:
                raise soql.SoqlError("INVALIDJOB", "Aggregate Relationships and aggregate "
                                     "functions (COUNT()) are not supported in Bulk API 2.0 "
                                     "queries")
            if parsed.offset is not None:
                raise soql.SoqlError("INVALIDJOB", "OFFSET is not supported in Bulk API 2.0 "
                                     "queries")
            schema = schema_for(parsed.sobject)  # object and fields checked now
            if schema is None:
                raise soql.SoqlError("INVALID_TYPE",
                                     f"sObject type '{parsed.sobject}' is not supported.")
            for path in parsed.fields:
                bind_path(schema, path)
        except soql.SoqlError as error:
            return _error(400, "INVALIDJOB", f"InvalidJob : {error.message}")
        with self._lock:
            self._count += 1
            job = QueryJob(make_id("750", self._count), str(body["operation"]), text,
                           parsed.sobject, self.clock(), self.user(), version,
                           held=self._held.is_set())
            if self._fail_next is not None:
                job.fail, job.error_message, self._fail_next = True, self._fail_next, None
            self.jobs[job.id] = job
            info = job.info(self.clock())
        info.pop("errorMessage", None)
        self.created.set()
        return _json(info)

    def _list(self) -> Response:
        now = self.clock()
        with self._lock:
            records = [job.info(now) for job in self.jobs.values() if not job.deleted]
        return _json({"done": True, "records": records, "nextRecordsUrl": None})

    def _poll(self, job: QueryJob) -> Response:
        with self._lock:
            job.polls += 1
            if job.state == "UploadComplete":
                job.state = "InProgress"
            elif job.state == "InProgress" and not job.held:
                if job.fail:
                    job.state = "Failed"
                else:
                    self._complete(job)
            info = job.info(self.clock())
        self.polled.set()
        return _json(info)

    def _complete(self, job: QueryJob) -> None:
        parsed = soql.parse(job.query)
        with self.org_lock:
            job.result = self.engine.run(parsed, include_deleted=job.operation == "queryAll",
                                         now=self.clock())
        job.processed = job.result[1].total
        job.state = "JobComplete"

    def _abort(self, job: QueryJob, request: Request) -> Response:
        body: JSONValue = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            return _error(400, "INVALIDJOB", "InvalidJob : a query job can only be aborted "
                          '({"state": "Aborted"})')
        with self._lock:
            if job.state not in ACTIVE_STATES:
                return _error(400, "INVALIDJOB", f"InvalidJob : Job {job.id} is in state "
                              f"{job.state} and can't be aborted")
            job.state = "Aborted"
            info = job.info(self.clock())
        return _json(info)

    def _delete(self, job: QueryJob) -> Response:
        with self._lock:
            if job.state not in TERMINAL_STATES:
                return _error(400, "API_ERROR", "Error encountered when deleting the job "
                              "because the job is not terminated")
            job.deleted = True
            job.result = None  # job data is removed with the job
        return Response(status=204)

    def _results(self, job: QueryJob, request: Request, version: str) -> Response:
        if job.state != "JobComplete" or job.result is None:
            return _error(400, "API_ERROR", f"Job {job.id} is in state {job.state}: results "
                          "are available once it is JobComplete")
        locator = request.args.get("locator") or ""
        offset = _offset(locator) if locator else 0
        if offset is None:
            return _error(400, "INVALIDLOCATOR", "invalid locator")
        size_text = request.args.get("maxRecords") or str(DEFAULT_MAX_RECORDS)
        if not size_text.isdigit() or int(size_text) < 1:
            return _error(400, "INVALID_MAXRECORDS", "maxRecords must be a positive integer")
        schema, result, selected = job.result
        size = int(size_text)
        with self.org_lock:
            rows = result.page(offset, size)
            rendered = [self.engine.render(schema, row, selected, version) for row in rows]
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([".".join(path.names) for path in selected])
        for record in rendered:
            writer.writerow([csv_value(_follow(record, path.names)) for path in selected])
        end = offset + len(rows)
        response = Response(out.getvalue(), status=200, mimetype="text/csv")
        response.headers["Sforce-NumberOfRecords"] = str(len(rows))
        response.headers["Sforce-Locator"] = _locator(end) if end < result.total else "null"
        with self._lock:
            job.result_sets.append((locator, len(rows)))
        return response


def _follow(record: dict[str, object], names: tuple[str, ...]) -> object:
    current: object = record
    for name in names:
        if not isinstance(current, dict):
            return None
        current = current.get(name)
    return current
