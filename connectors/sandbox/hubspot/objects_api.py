"""The CRM objects API for the sandbox portal's companies and deals.

    GET    /crm/v3/objects/{type}?limit&after&properties&archived&associations
    GET    /crm/v3/objects/{type}/{id}?properties&archived&idProperty&associations
    POST   /crm/v3/objects/{type}                    one record: 201
    PATCH  /crm/v3/objects/{type}/{id}               one record's properties: 200
    DELETE /crm/v3/objects/{type}/{id}               archive: 204
    POST   /crm/v3/objects/{type}/search             filterGroups (or one top-level
                                                     `filters` AND group), sorts, query,
                                                     the search cap (search.py's rules)
    POST   /crm/v3/objects/{type}/batch/{read|create|update|archive}  at most 100 inputs;
                                                     a 207 names failed inputs in
                                                     `context.ids`, as for contacts

Shapes, limits, error bodies and per-record faults are the contacts' (writes.py,
search.py, http.py); what differs is the property table (object_schema.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from werkzeug.wrappers import Request

from connectors.sandbox.faults import HubSpotLimits, RequestPlan
from connectors.sandbox.hubspot.associations import Associations
from connectors.sandbox.hubspot.http import (
    PLAN_KEY,
    Answer,
    ApiFailure,
    Json,
    iso_millis,
    json_body,
    not_found,
    property_names,
    record_failure,
    validation_error,
)
from connectors.sandbox.hubspot.objects import CrmRecord, RecordStore
from connectors.sandbox.hubspot.search import parse_search, run_search
from connectors.sandbox.hubspot.validation import InputRejected
from connectors.sandbox.hubspot.writes import batch_error, batch_response
from syncer.domain.json_values import JSONObject, JSONValue

LIST_MAX = 100


def _names(request: Request, name: str = "properties") -> list[str] | None:
    values = [part.strip() for raw in request.args.getlist(name) for part in raw.split(",")]
    return [v for v in values if v] or None


def _flag(request: Request, name: str) -> bool:
    return request.args.get(name, "false").lower() == "true"


def _properties(item: object) -> dict[str, object]:
    properties = item.get("properties") if isinstance(item, dict) else None
    if not isinstance(properties, dict):
        raise validation_error("Invalid input JSON: each input needs a 'properties' object")
    return properties


def rejected_failure(rejected: InputRejected) -> ApiFailure:
    """A refused write's 400: the message listing each bad value, and `errors` naming each
    property in `context.propertyName`."""
    return ApiFailure(400, rejected.category, rejected.message,
                      extra={"errors": rejected.details()})


def _checked(store: RecordStore, values: Mapping[str, object]) -> dict[str, str | None]:
    try:
        return store.check(values)
    except InputRejected as rejected:
        raise rejected_failure(rejected) from None


class ObjectsApi:
    """Handlers for one object type's records (`store`), bound per request by
    api.handler_for."""

    def __init__(self, store: RecordStore, associations: Associations,
                 limits: HubSpotLimits, base_url: Callable[[], str]) -> None:
        self.store = store
        self.kind = store.kind
        self.associations = associations
        self.limits = limits
        self.base_url = base_url

    @property
    def _missing(self) -> str:
        return (f"Could not get some {self.kind.singular} objects, they may be deleted or "
                "not exist. Check that ids are valid.")

    def record_json(self, record: CrmRecord, names: list[str] | None,
                    associations: list[str] | None = None) -> Json:
        """A record as HubSpot answers it: the named (or default) properties plus the
        ones always returned; unknown names left out, known unset ones null."""
        wanted = dict.fromkeys([*(names or self.kind.default_returned),
                                *self.kind.always_returned])
        with self.store.lock:
            known = self.store.properties
            properties = {n: record.properties.get(n) for n in wanted if n in known}
        data: Json = {"id": record.id, "properties": properties,
                      "createdAt": iso_millis(record.created_at),
                      "updatedAt": iso_millis(record.updated_at),
                      "archived": record.archived_at is not None}
        if record.archived_at is not None:
            data["archivedAt"] = iso_millis(record.archived_at)
        linked: Json = {}
        for other in associations or []:
            found = self.associations.targets(self.kind.name, record.id, other)
            if found:
                label = f"{self.kind.name[:-1]}_to_{other.rstrip('s')}"
                linked[other] = {"results": [{"id": i, "type": label} for i, _ in found]}
        if linked:
            data["associations"] = linked
        return data

    # -- reading -------------------------------------------------------------------------
    def listing(self, request: Request) -> Answer:
        raw = request.args.get("limit") or "10"
        if not raw.isdigit() or int(raw) < 1:
            raise validation_error(f"limit must be a positive integer, got '{raw}'")
        limit = min(int(raw), LIST_MAX)
        after = request.args.get("after") or "0"
        if not after.isdigit():
            raise validation_error(f"Invalid paging cursor: '{after}'")
        records = (self.store.archived_records() if _flag(request, "archived")
                   else self.store.live())
        page = [r for r in records if int(r.id) >= int(after)][:limit + 1]
        names, linked = _names(request), _names(request, "associations")
        body: Json = {"results": [self.record_json(r, names, linked) for r in page[:limit]]}
        if len(page) > limit:
            token = page[limit].id
            body["paging"] = {"next": {"after": token, "link": (
                f"{self.base_url()}/crm/v3/objects/{self.kind.name}?after={token}")}}
        return 200, body

    def get(self, request: Request, record_id: str) -> Answer:
        id_property = request.args.get("idProperty")
        if _flag(request, "archived"):
            with self.store.lock:
                record = self.store.archived.get(record_id)
        elif id_property and id_property != "hs_object_id":
            record = self.store.find(id_property, record_id)
        else:
            record = self.store.get(record_id)
        if record is None:
            raise not_found(f"Object not found.  objectId are usually numeric: {record_id}")
        return 200, self.record_json(record, _names(request), _names(request, "associations"))

    def search(self, request: Request) -> Answer:
        with self.store.lock:
            schema = dict(self.store.properties)
        search = parse_search(json_body(request), self.limits.search_page_max, schema,
                              self.kind.query_properties)
        cap = self.limits.search_cap
        if search.offset >= cap:
            raise validation_error(
                f"Search results are limited to {cap}: 'after' {search.offset} "
                "is past the last result that can be returned. Narrow the search instead.")
        total, found = run_search(self.store.live(), search,
                                  min(search.offset + search.limit, cap))
        end = min(search.offset + search.limit, total, cap)
        body: Json = {"total": total, "results": [
            self.record_json(r, search.properties) for r in found[search.offset:end]]}
        if end < total:
            body["paging"] = {"next": {"after": str(end)}}
        return 200, body

    # -- single-record writes ------------------------------------------------------------
    def create(self, request: Request) -> Answer:
        properties = _properties(json_body(request))
        record = self.store.add(_checked(self.store, properties))
        return 201, self.record_json(record, list(properties) or None)

    def update(self, request: Request, record_id: str) -> Answer:
        properties = _properties(json_body(request))
        clean = _checked(self.store, properties)
        if self.store.get(record_id) is None:
            raise not_found(f"Object not found.  objectId are usually numeric: {record_id}")
        return 200, self.record_json(self.store.apply(record_id, clean), list(clean) or None)

    def delete(self, record_id: str) -> Answer:
        """204, also for an id that is already gone (as HubSpot)."""
        with contextlib.suppress(InputRejected):
            self.store.archive(record_id)
        return 204, None

    # -- batches -------------------------------------------------------------------------
    def _inputs(self, request: Request) -> tuple[JSONObject, list[JSONValue]]:
        body = json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(inputs, list):
            raise validation_error("Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > self.limits.batch_max:
            raise validation_error(f"Too many inputs: a batch accepts at most "
                                   f"{self.limits.batch_max}, got {len(inputs)}")
        return body, inputs

    def batch_read(self, request: Request) -> Answer:
        body, inputs = self._inputs(request)
        id_property = body.get("idProperty")
        names = property_names(body.get("properties"))
        started = iso_millis(datetime.now(timezone.utc))
        results, missing = [], []
        for item in inputs:
            wanted = str(item.get("id", "")) if isinstance(item, dict) else ""
            record = (self.store.find(str(id_property), wanted)
                      if id_property and id_property != "hs_object_id"
                      else self.store.get(wanted))
            if record is None:
                missing.append(wanted)
            else:
                results.append(self.record_json(record, names))
        errors = [batch_error("OBJECT_NOT_FOUND", self._missing, missing)] if missing else []
        return batch_response(results, errors, started, 200)

    def batch_create(self, request: Request) -> Answer:
        """All inputs or none: one invalid input fails the batch with a 400."""
        _, inputs = self._inputs(request)
        started = iso_millis(datetime.now(timezone.utc))
        checked = [_checked(self.store, _properties(item)) for item in inputs]
        results = []
        for item, values in zip(inputs, checked, strict=True):
            result = self.record_json(self.store.add(values), list(values) or None)
            if isinstance(item, dict) and item.get("objectWriteTraceId") is not None:
                result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
            results.append(result)
        return batch_response(results, [], started, 201)

    def batch_update(self, request: Request) -> Answer:
        """Per input: written, or named in a 207 error (invalid values, unknown id, an
        injected per-record fault)."""
        _, inputs = self._inputs(request)
        ids = [str(item.get("id", "")) if isinstance(item, dict) else "" for item in inputs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise validation_error(f"Duplicate IDs found in batch input: {duplicates}",
                                   ids=duplicates)
        started = iso_millis(datetime.now(timezone.utc))
        results: list[Json] = []
        errors: list[Json] = []
        missing: list[str] = []
        plan: RequestPlan | None = request.environ.get(PLAN_KEY)
        for item, record_id in zip(inputs, ids, strict=True):
            if self.store.get(record_id) is None:
                missing.append(record_id)
                continue
            try:
                clean = self.store.check(dict(_properties(item)))
            except InputRejected as rejected:
                errors.append({**batch_error(rejected.category, rejected.message,
                                             [record_id]), "errors": rejected.details()})
                continue
            fault = plan.record_fault(record_id) if plan is not None else None
            if fault is not None:
                errors.append(batch_error(*record_failure(fault), [record_id]))
                continue
            results.append(self.record_json(self.store.apply(record_id, clean), list(clean)))
        if missing:
            errors.insert(0, batch_error("OBJECT_NOT_FOUND", self._missing, missing))
        return batch_response(results, errors, started, 200)

    def batch_archive(self, request: Request) -> Answer:
        """204; unknown ids are skipped, as HubSpot does."""
        _, inputs = self._inputs(request)
        for item in inputs:
            record_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            with contextlib.suppress(InputRejected):
                self.store.archive(record_id)
        return 204, None
