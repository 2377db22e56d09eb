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

from connectors.sandbox.faults import HubSpotLimits
from connectors.sandbox.hubspot.associations import Associations
from connectors.sandbox.hubspot.batches import (
    batch_error,
    batch_inputs,
    batch_response,
    echo_trace,
    input_ids,
    input_properties,
    rejected_failure,
    update_batch,
)
from connectors.sandbox.hubspot.http import (
    PLAN_KEY,
    Answer,
    Json,
    iso_millis,
    json_body,
    not_found,
    property_names,
    validation_error,
)
from connectors.sandbox.hubspot.objects import CrmRecord, RecordStore
from connectors.sandbox.hubspot.records import record_answer
from connectors.sandbox.hubspot.search import parse_search, run_search
from connectors.sandbox.hubspot.validation import InputRejected

LIST_MAX = 100


def _names(request: Request, name: str = "properties") -> list[str] | None:
    values = [part.strip() for raw in request.args.getlist(name) for part in raw.split(",")]
    return [v for v in values if v] or None


def _flag(request: Request, name: str) -> bool:
    return request.args.get(name, "false").lower() == "true"


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
        with self.store.lock:
            data = record_answer(record, names, self.kind.default_returned,
                                 self.kind.always_returned, self.store.properties)
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
        properties = input_properties(json_body(request))
        record = self.store.add(_checked(self.store, properties))
        return 201, self.record_json(record, list(properties) or None)

    def update(self, request: Request, record_id: str) -> Answer:
        properties = input_properties(json_body(request))
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
    def batch_read(self, request: Request) -> Answer:
        body, inputs = batch_inputs(request, self.limits.batch_max)
        id_property = body.get("idProperty")
        names = property_names(body.get("properties"))
        started = iso_millis(datetime.now(timezone.utc))
        results, missing = [], []
        for wanted in input_ids(inputs):
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
        _, inputs = batch_inputs(request, self.limits.batch_max)
        started = iso_millis(datetime.now(timezone.utc))
        checked = [_checked(self.store, input_properties(item)) for item in inputs]
        results = []
        for item, values in zip(inputs, checked, strict=True):
            results.append(echo_trace(
                self.record_json(self.store.add(values), list(values) or None), item))
        return batch_response(results, [], started, 201)

    def batch_update(self, request: Request) -> Answer:
        """Per input: written, or named in a 207 error (invalid values, unknown id, an
        injected per-record fault)."""
        _, inputs = batch_inputs(request, self.limits.batch_max)
        return update_batch(inputs, _StoreUpdates(self), request.environ.get(PLAN_KEY),
                            self._missing)

    def batch_archive(self, request: Request) -> Answer:
        """204; unknown ids are skipped, as HubSpot does."""
        _, inputs = batch_inputs(request, self.limits.batch_max)
        for record_id in input_ids(inputs):
            with contextlib.suppress(InputRejected):
                self.store.archive(record_id)
        return 204, None


class _StoreUpdates:
    """One object type's records as `update_batch` writes them."""

    def __init__(self, api: ObjectsApi) -> None:
        self.api = api

    def exists(self, record_id: str) -> bool:
        return self.api.store.get(record_id) is not None

    def check(self, properties: dict[str, object]) -> dict[str, str | None]:
        return self.api.store.check(properties)

    def write(self, record_id: str, values: dict[str, str | None]) -> Json:
        return self.api.record_json(self.api.store.apply(record_id, values), list(values))
