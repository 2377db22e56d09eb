"""The REST resources under /services/data/vNN.N/ that the Salesforce sandbox answers.

Authentication, limits and fault injection happen before a request gets here (server.py);
the HTTP-level answers (error bodies, 404s, route names) are in responses.py;
this module only turns an admitted request into the response a real org would give:
query pages with cursor locators (`query` leaves deleted rows out, `queryAll` keeps them),
describe, record retrieve, PATCH and POST (insert), sObject Collections PATCH and POST, and
the Composite resource (composite.py), whose subrequests come back through `handle`.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from werkzeug.wrappers import Request, Response

from connectors.sandbox.faults import RequestPlan, SalesforceLimits
from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.bulk import BulkJobs
from connectors.sandbox.salesforce.composite import run_composite
from connectors.sandbox.salesforce.field_rules import RecordRejected, RequestRejected, SaveError
from connectors.sandbox.salesforce.inserts import prepare_insert
from connectors.sandbox.salesforce.org import SalesforceOrg, StagedWrite
from connectors.sandbox.salesforce.query import QueryEngine
from connectors.sandbox.salesforce.query_bind import BoundPath
from connectors.sandbox.salesforce.responses import (
    deleted,
    error_response,
    json_response,
    method_not_allowed,
    not_found,
)
from connectors.sandbox.salesforce.results import QueryResult
from connectors.sandbox.salesforce.rows import text
from connectors.sandbox.salesforce.schema import (
    SCHEMAS,
    ObjectSchema,
    describe_global_entry,
    describe_object,
    make_id,
    object_urls,
    schema_for,
)
from connectors.sandbox.salesforce.tooling import ToolingApi
from syncer.domain.json_values import JSONObject, JSONValue, objects

DEFAULT_BATCH = 2000
MIN_BATCH = 200
MAX_COLLECTION = 200
#: how long a query locator answers (Salesforce, API 56.0 on: two days after the query,
#: and no limit on how many are open); later it is INVALID_QUERY_LOCATOR.
CURSOR_LIFETIME = timedelta(days=2)
ROLLED_BACK = SaveError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header")


#: where the sandbox hands a request's fault plan to the API (the WSGI environ).
PLAN_KEY = "syncer.fault_plan"


@dataclass
class _Cursor:
    """What a query locator remembers: the result (a stream that generates rows page by
    page, so a large result is never held), the fields and the page size."""

    schema: ObjectSchema
    result: QueryResult
    selected: list[BoundPath]
    batch_size: int
    endpoint: str
    opened_at: datetime


def injected_save_error(kind: str) -> SaveError:
    """The SaveError of an injected per-record failure: a row lock (retryable) or a
    validation rule (permanent)."""
    if kind == "lock":
        return SaveError("UNABLE_TO_LOCK_ROW",
                         "unable to obtain exclusive access to this record or 1 records")
    return SaveError("FIELD_CUSTOM_VALIDATION_EXCEPTION",
                     "Syncer sandbox validation rule: this record cannot be changed now")


class RestApi:
    """The data API of one org. Thread-safe: every org access holds the org's lock.

    `recent_writes` remembers the records the API wrote last (the simulated editor picks
    from them, so its edits collide with a sync's writes as a colleague's would).
    """

    def __init__(self, org: SalesforceOrg, clock: Callable[[], datetime],
                 usage: Callable[[], tuple[int, int]],
                 limits: SalesforceLimits | None = None) -> None:
        self.org = org
        self.clock = clock
        self.usage = usage
        self.limits = limits or SalesforceLimits()
        self.engine = QueryEngine(org)
        #: the Tooling API's CustomField creation (sandbox_tooling)
        self.tooling = ToolingApi(org)
        self.recent_writes: collections.deque[str] = collections.deque(maxlen=256)
        #: the owner an active lead assignment rule gives new Leads (None: no active rule)
        self.assignment_queue: str | None = None
        self._cursors: collections.OrderedDict[str, _Cursor] = collections.OrderedDict()
        self._cursor_lock = threading.Lock()
        self._cursor_count = 0
        #: Bulk API 2.0 query jobs (sandbox_bulk); the server names the creating user
        self.bulk = BulkJobs(self.engine, org.lock, clock, lambda: "")

    def handle(self, request: Request, version: str, rest: str) -> Response:
        parts = rest.split("/") if rest else []
        method = request.method
        if not parts:
            return json_response({name: f"/services/data/v{version}/{name}" for name in (
                "sobjects", "query", "queryAll", "limits", "composite")})
        if parts[0] in ("query", "queryAll") and len(parts) <= 2:
            if method != "GET":
                return method_not_allowed(method, "GET")
            if len(parts) == 2:
                return self._more(parts[1], version)
            return self._query(request, version, parts[0])
        if parts == ["limits"]:
            used, allowed = self.usage()
            return json_response({
                "DailyApiRequests": {"Max": allowed, "Remaining": max(0, allowed - used)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200}})
        if parts[0] == "sobjects":
            return self._sobjects(request, version, parts[1:])
        if parts[:2] == ["jobs", "query"]:
            return self.bulk.handle(request, version, parts[2:])
        if parts[0] == "tooling":
            status, body = self.tooling.handle(request, parts[1:])
            return json_response(body, status)
        if parts == ["composite"]:  # subrequests run through this same method
            return run_composite(request, self.handle)
        if parts == ["composite", "sobjects"]:
            if method not in ("PATCH", "POST"):
                return method_not_allowed(method, "PATCH, POST")
            return self._collection_write(request, creating=method == "POST")
        return not_found()

    # -- query ---------------------------------------------------------------------------

    def _query(self, request: Request, version: str, endpoint: str) -> Response:
        text = request.args.get("q")
        if not text:
            return error_response(400, "MALFORMED_QUERY", "A query string is required")
        try:
            parsed = soql.parse(text)
            with self.org.lock:
                schema, result, selected = self.engine.run(
                    parsed, include_deleted=endpoint == "queryAll", now=self.clock())
        except soql.SoqlError as error:
            return error_response(400, error.error_code, error.message)
        if parsed.count_only:
            return json_response({"totalSize": result.total, "done": True, "records": []})
        batch = _batch_size(request.headers.get("Sforce-Query-Options", ""),
                            self.limits.query_batch)
        cursor = _Cursor(schema, result, selected, batch, endpoint, self.clock())
        # only a result with more pages needs a cursor to come back to
        locator = self._open(cursor) if result.total > batch else ""
        return json_response(self._page(cursor, locator, 0, version))

    def _open(self, cursor: _Cursor) -> str:
        """Keep a cursor for its two days; no limit on how many are open (as Salesforce
        since API 56.0). Expired ones are dropped here, oldest first."""
        with self._cursor_lock:
            self._drop_expired()
            self._cursor_count += 1
            locator = make_id("01g", self._cursor_count)
            self._cursors[locator] = cursor
        return locator

    def _drop_expired(self) -> None:
        now = self.clock()
        while self._cursors:
            oldest = next(iter(self._cursors.values()))
            if now - oldest.opened_at < CURSOR_LIFETIME:
                return
            self._cursors.popitem(last=False)

    def _more(self, token: str, version: str) -> Response:
        locator, _, offset_text = token.rpartition("-")
        with self._cursor_lock:
            self._drop_expired()
            cursor = self._cursors.get(locator)
        if cursor is None or not offset_text.isdigit():
            return error_response(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset = int(offset_text)
        return json_response(self._page(cursor, locator, offset, version))

    def _page(self, cursor: _Cursor, locator: str, offset: int,
              version: str) -> dict[str, object]:
        end = offset + cursor.batch_size
        total = cursor.result.total
        page: dict[str, object] = {"totalSize": total, "done": end >= total}
        if not page["done"]:  # cursors stay open (two days) so a page can be re-read
            page["nextRecordsUrl"] = (
                f"/services/data/v{version}/{cursor.endpoint}/{locator}-{end}")
        with self.org.lock:
            rows = cursor.result.page(offset, cursor.batch_size)
            page["records"] = [self.engine.render(cursor.schema, row, cursor.selected, version)
                               for row in rows]
        return page

    # -- sObjects ------------------------------------------------------------------------

    def _sobjects(self, request: Request, version: str, parts: list[str]) -> Response:
        if not parts:
            return json_response({
                "encoding": "UTF-8", "maxBatchSize": self.limits.collection_max,
                "sobjects": [describe_global_entry(s, version) for s in SCHEMAS.values()]})
        schema = schema_for(parts[0])
        if schema is None:
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 1:
            if request.method == "POST":
                return self._create_one(schema, request)
            return json_response({"objectDescribe": describe_global_entry(schema, version),
                                  "recentItems": []})
        if len(parts) == 2 and parts[1] == "describe":
            with self.org.lock:
                described = describe_object(
                    schema, version, lambda name: self.org.has_field(schema.name, name))
            return json_response(described)
        if len(parts) != 2:
            return not_found()
        if request.method == "GET":
            return self._retrieve(schema.name, parts[1], request, version)
        if request.method == "PATCH":
            return self._update_one(schema.name, parts[1], request)
        return method_not_allowed(request.method, "GET, PATCH")

    def _retrieve(self, object_name: str, record_id: str, request: Request,
                  version: str) -> Response:
        with self.org.lock:
            found = self.org.lookup(record_id)
            if found is None or found[0].name != object_name:
                return not_found()
            if found[1].get("IsDeleted"):
                return deleted()
            rendered = self.org.rendered(record_id)
        rendered.pop("type")
        wanted = request.args.get("fields")
        if wanted:
            names = {name.strip().lower() for name in wanted.split(",")}
            rendered = {k: v for k, v in rendered.items() if k.lower() in names | {"id"}}
        schema = found[0]
        url = object_urls(schema, version)["sobject"] + "/" + text(found[1], "Id")
        return json_response({"attributes": {"type": schema.name, "url": url}, **rendered})

    def _update_one(self, object_name: str, record_id: str, request: Request) -> Response:
        body: JSONValue = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error_response(400, "JSON_PARSER_ERROR", "The request body is not a "
                                  "JSON object")
        schema = schema_for(object_name)
        assert schema is not None
        with self.org.lock:
            found = self.org.lookup(record_id)
            if found is None or found[0].name != schema.name:
                return not_found()
            if found[1].get("IsDeleted"):
                return deleted()
            try:
                staged = self.org.prepare(schema, record_id, body)
                self._injected_failure(request, staged.record_id)
            except RequestRejected as error:
                return error_response(400, error.error_code, error.message)
            except RecordRejected as error:
                return _record_errors(error)
            self.org.apply(staged, self.clock())
            self.recent_writes.append(staged.record_id)
        return Response(status=204)

    def _create_one(self, schema: ObjectSchema, request: Request) -> Response:
        """POST sobjects/<type>: 201 with the new id, or 400 with the record's errors."""
        body: JSONValue = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error_response(400, "JSON_PARSER_ERROR", "The request body is not a "
                                  "JSON object")
        values = {k: v for k, v in body.items() if k != "attributes"}
        with self.org.lock:
            try:
                staged = self._assigned(request, prepare_insert(self.org, schema, values))
                self._injected_failure(request, staged.record_id)
            except RequestRejected as error:
                return error_response(400, error.error_code, error.message)
            except RecordRejected as error:
                return _record_errors(error)
            record_id = text(self.org.apply(staged, self.clock()), "Id")
            self.recent_writes.append(record_id)
        return json_response({"id": record_id, "success": True, "errors": []}, 201)

    def _assigned(self, request: Request, staged: StagedWrite) -> StagedWrite:
        """A Lead insert after the org's active assignment rule, which runs unless the
        request carries `Sforce-Auto-Assign: FALSE` (the REST API's default is TRUE)."""
        header = request.headers.get("Sforce-Auto-Assign", "TRUE").strip().upper()
        if self.assignment_queue and staged.schema.name == "Lead" and header != "FALSE":
            staged.changes["OwnerId"] = self.assignment_queue
        return staged

    @staticmethod
    def _injected_failure(request: Request, record_id: str) -> None:
        """Raise the per-record failure the request's fault plan draws for this record."""
        plan: RequestPlan | None = request.environ.get(PLAN_KEY)
        fault = plan.record_fault(record_id) if plan is not None else None
        if fault is not None:
            raise RecordRejected([injected_save_error(fault)])

    def _collection_write(self, request: Request, *, creating: bool) -> Response:
        """PATCH (update) or POST (insert) composite/sobjects: one SaveResult per record,
        in request order; with allOrNone, one failure rolls every record back."""
        body: JSONValue = request.get_json(silent=True)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return error_response(400, "JSON_PARSER_ERROR",
                                  "Expected a JSON object with a records array")
        limit = self.limits.collection_max
        if len(records) > limit:
            return error_response(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot "
                                  f"submit more than {limit} records into this call")
        all_or_none = bool(body.get("allOrNone", False)) if isinstance(body, dict) else False
        with self.org.lock:
            try:
                outcomes = [self._prepare_member(request, record, creating)
                            for record in objects(records, "records")]
            except RequestRejected as error:
                return error_response(400, error.error_code, error.message)
            failed = any(isinstance(outcome, list) for outcome in outcomes)
            results = []
            now = self.clock()
            for outcome in outcomes:
                if isinstance(outcome, list):
                    results.append({"success": False,
                                    "errors": [e.as_json() for e in outcome]})
                elif all_or_none and failed:  # an insert rolled back has no id
                    results.append({**({} if creating else {"id": outcome.record_id}),
                                    "success": False, "errors": [ROLLED_BACK.as_json()]})
                else:
                    self.org.apply(outcome, now)
                    self.recent_writes.append(outcome.record_id)
                    results.append({"id": outcome.record_id, "success": True, "errors": []})
        return json_response(results)

    def _prepare_member(self, request: Request, record: JSONObject,
                        creating: bool) -> StagedWrite | list[SaveError]:
        attributes = record.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not isinstance(type_name, str):
            raise RequestRejected("INVALID_TYPE", "Must send a concrete entity type.")
        schema = schema_for(type_name)
        if schema is None:
            raise RequestRejected("INVALID_TYPE", f"sObject type '{type_name}' is not "
                                  "supported.")
        record_id = next((v for k, v in record.items() if k.lower() == "id"), None)
        values = {k: v for k, v in record.items() if k.lower() not in ("id", "attributes")}
        try:
            if creating and record_id is not None:
                raise RecordRejected([SaveError("INVALID_FIELD", "cannot specify Id in an "
                                                "insert call", ("Id",))])
            staged = self._assigned(request, prepare_insert(self.org, schema, values)) \
                if creating else self.org.prepare(schema, record_id, values)
            self._injected_failure(request, staged.record_id)
            return staged
        except RecordRejected as error:
            return error.errors


def _record_errors(error: RecordRejected) -> Response:
    """A single-record write's errors: 400 with the error list (and the fields named)."""
    return json_response([{"message": e.message, "errorCode": e.status_code,
                           "fields": list(e.fields)} for e in error.errors], 400)


def _batch_size(options: str, default: int = DEFAULT_BATCH) -> int:
    """`Sforce-Query-Options: batchSize=N`, clamped to Salesforce's 200..2000 (the
    sandbox's configured page size as the maximum)."""
    for option in options.split(","):
        name, _, value = option.partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(min(MIN_BATCH, default), min(default, int(value.strip())))
    return default
