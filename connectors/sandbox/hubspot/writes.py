"""The sandbox's contact write and batch endpoints: create, batch create, batch update,
batch read and merge, in the shapes of hubspot-api-client 12's models.

They share the batch conventions of shared/specs/HUBSPOT.md (at most 100 inputs, 207 with
per-input errors naming the ids in `context.ids`) and the creation and merge rules of
sandbox_identity.py, so they live together apart from the read-only handlers.
"""

from __future__ import annotations

import contextlib
from collections import deque
from datetime import datetime, timezone

from werkzeug.wrappers import Request

from connectors.sandbox.faults import HubSpotLimits, RequestPlan
from connectors.sandbox.hubspot.history import property_history
from connectors.sandbox.hubspot.http import (
    PLAN_KEY,
    Answer,
    ApiFailure,
    Json,
    iso_millis,
    json_body,
    property_names,
    record_failure,
    validation_error,
)
from connectors.sandbox.hubspot.identity import (
    MergeMode,
    create_contacts,
    merge_contacts,
)
from connectors.sandbox.hubspot.schema import ALWAYS_RETURNED, DEFAULT_RETURNED
from connectors.sandbox.hubspot.state import Contact, PortalState
from connectors.sandbox.hubspot.validation import InputRejected
from syncer.domain.json_values import JSONObject, JSONValue

NOT_FOUND_MESSAGE = ("Could not get some CONTACT objects, they may be deleted or not exist. "
                     "Check that ids are valid.")


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


class ContactWrites:
    """Contact handlers that write or read by id (a base of HubSpotApi, which sets the
    attributes below)."""

    state: PortalState
    limits: HubSpotLimits
    recent_writes: deque[str]
    merge_mode: MergeMode

    def contact_json(self, contact: Contact, names: list[str] | None,
                     with_history: list[str] | None = None) -> Json:
        """A contact as HubSpot answers it; `with_history` names the properties whose
        every value is returned too (`propertiesWithHistory`, newest first)."""
        wanted = dict.fromkeys([*(names or DEFAULT_RETURNED), *ALWAYS_RETURNED])
        # HubSpot omits names it does not know and returns null for known but unset ones.
        known = self.state.properties
        properties = {n: contact.properties.get(n) for n in wanted if n in known}
        data: Json = {"id": contact.id, "properties": properties,
                      "createdAt": iso_millis(contact.created_at),
                      "updatedAt": iso_millis(contact.updated_at),
                      "archived": contact.archived_at is not None}
        if contact.archived_at is not None:
            data["archivedAt"] = iso_millis(contact.archived_at)
        if with_history:
            data["propertiesWithHistory"] = {
                name: [{"value": change.value, "timestamp": iso_millis(change.at),
                        "sourceType": change.source}
                       for change in property_history(contact, name)]
                for name in dict.fromkeys(with_history) if name in known}
        return data

    def _inputs(self, request: Request) -> tuple[JSONObject, list[JSONValue]]:
        body = json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(inputs, list):
            raise validation_error("Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > self.limits.batch_max:
            raise validation_error(
                f"Too many inputs: a batch accepts at most {self.limits.batch_max}, "
                f"got {len(inputs)}")
        return body, inputs

    # -- create ------------------------------------------------------------------------
    def create_contact(self, request: Request, args: dict[str, str]) -> Answer:
        """One contact: 201 with it, 409 for a known email, 400 for invalid values."""
        properties = _properties(json_body(request))
        [contact] = create_contacts(self.state, [properties])
        return 201, self.contact_json(contact, list(properties) or None)

    def batch_create(self, request: Request, args: dict[str, str]) -> Answer:
        """All inputs or none (see sandbox_identity); results echo `objectWriteTraceId`."""
        _, inputs = self._inputs(request)
        started = iso_millis(datetime.now(timezone.utc))
        properties = [_properties(item) for item in inputs]
        made = create_contacts(self.state, properties)
        results = []
        for item, values, contact in zip(inputs, properties, made, strict=True):
            result = self.contact_json(contact, list(values) or None)
            trace = item.get("objectWriteTraceId") if isinstance(item, dict) else None
            if trace is not None:
                result["objectWriteTraceId"] = str(trace)
            results.append(result)
        return batch_response(results, [], started, 201)

    # -- update ------------------------------------------------------------------------
    def batch_update(self, request: Request, args: dict[str, str]) -> Answer:
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
        with self.state.lock:
            for item, record_id in zip(inputs, ids, strict=True):
                if not isinstance(item, dict) or self.state.contact(record_id) is None:
                    missing.append(record_id)  # an input that is no object has no id
                    continue
                properties = item.get("properties") or {}
                if not isinstance(properties, dict):
                    raise ApiFailure(400, "VALIDATION_ERROR", "Invalid input JSON: an "
                                     "input's 'properties' must be an object")
                try:
                    clean = self.state.check(dict(properties))
                except InputRejected as rejected:
                    errors.append(batch_error(rejected.category, rejected.message,
                                              [record_id]))
                    continue
                fault = plan.record_fault(record_id) if plan is not None else None
                if fault is not None:
                    errors.append(batch_error(*record_failure(fault), [record_id]))
                    continue
                contact = self.state.apply(record_id, clean)
                self.recent_writes.append(record_id)
                results.append(self.contact_json(contact, list(clean)))
        if missing:
            errors.insert(0, batch_error("OBJECT_NOT_FOUND", NOT_FOUND_MESSAGE, missing))
        return batch_response(results, errors, started, 200)

    def update_record(self, request: Request, args: dict[str, str]) -> Answer:
        """PATCH one contact (by id, or `idProperty`): 200 with the written properties;
        invalid values are a 400, an unknown contact a 404."""
        properties = _properties(json_body(request))
        id_property = request.args.get("idProperty")
        found = (self.state.find(id_property, args["record_id"])
                 if id_property and id_property != "hs_object_id"
                 else self.state.contact(args["record_id"]))
        if found is None:
            raise ApiFailure(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are "
                             f"usually numeric: {args['record_id']}")
        try:
            clean = self.state.check(dict(properties))
        except InputRejected as rejected:
            raise ApiFailure(400, rejected.category, rejected.message,
                             extra={"errors": rejected.details()}) from None
        contact = self.state.apply(found.id, clean)
        self.recent_writes.append(found.id)
        return 200, self.contact_json(contact, list(clean) or None)

    def batch_upsert(self, request: Request, args: dict[str, str]) -> Answer:
        """Create or update by a unique property (`idProperty` email): each result says
        whether it is `new`; an invalid input fails the batch (400), as a create does."""
        _, inputs = self._inputs(request)
        started = iso_millis(datetime.now(timezone.utc))
        planned: list[tuple[str, dict[str, str | None]]] = []
        for item in inputs:
            key = str(item.get("id", "")).strip() if isinstance(item, dict) else ""
            if not isinstance(item, dict) or item.get("idProperty") != "email" or not key:
                raise validation_error("Each upsert input needs an id and idProperty "
                                       "'email' (the sandbox upserts contacts by email)")
            try:
                planned.append((key, self.state.check({**_properties(item), "email": key})))
            except InputRejected as rejected:
                raise ApiFailure(400, rejected.category, rejected.message) from None
        results: list[Json] = []
        with self.state.lock:
            for email, values in planned:
                existing = self.state.find("email", email)
                contact = (self.state.apply(existing.id, values) if existing is not None
                           else self.state.add(values))
                results.append({**self.contact_json(contact, list(values)),
                                "new": existing is None})
        return batch_response(results, [], started, 200)

    # -- read by id --------------------------------------------------------------------
    def batch_read(self, request: Request, args: dict[str, str]) -> Answer:
        """Contacts by id (or by `idProperty`, e.g. email); merged-away and unknown ids
        are a 207 OBJECT_NOT_FOUND error naming them."""
        body, inputs = self._inputs(request)
        id_property = body.get("idProperty")
        names = property_names(body.get("properties"))
        history = property_names(body.get("propertiesWithHistory"))
        started = iso_millis(datetime.now(timezone.utc))
        results: list[Json] = []
        missing: list[str] = []
        wanted = [str(item.get("id", "")) if isinstance(item, dict) else "" for item in inputs]
        for record_id in dict.fromkeys(wanted):
            if id_property and id_property != "hs_object_id":
                contact = self.state.find(str(id_property), record_id)
            else:
                contact = self.state.contact(record_id)
            if contact is None:
                missing.append(record_id)
            else:
                results.append(self.contact_json(contact, names, history))
        errors = [batch_error("OBJECT_NOT_FOUND", NOT_FOUND_MESSAGE, missing)] if missing else []
        return batch_response(results, errors, started, 200)

    # -- archive -----------------------------------------------------------------------
    def archive_contact(self, request: Request, args: dict[str, str]) -> Answer:
        """DELETE one contact: 204, also for an id that is already gone (as HubSpot)."""
        with contextlib.suppress(InputRejected):
            self.state.archive(args["record_id"])
        return 204, None

    def batch_archive(self, request: Request, args: dict[str, str]) -> Answer:
        """Archive contacts by id: 204; unknown ids are skipped, as HubSpot does."""
        _, inputs = self._inputs(request)
        for item in inputs:
            record_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            try:
                self.state.archive(record_id)
            except InputRejected:
                continue
        return 204, None

    # -- merge -------------------------------------------------------------------------
    def merge(self, request: Request, args: dict[str, str]) -> Answer:
        """`{"primaryObjectId", "objectIdToMerge"}` -> 200 with the surviving contact."""
        body = json_body(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        ids = [body.get("primaryObjectId"), body.get("objectIdToMerge")]
        if not all(isinstance(i, str | int) and str(i).strip() for i in ids):
            raise validation_error("Invalid input JSON: primaryObjectId and objectIdToMerge "
                                   "are both required")
        survivor = merge_contacts(self.state, str(ids[0]).strip(), str(ids[1]).strip(),
                                  self.merge_mode)
        return 200, self.contact_json(survivor, None)


def _properties(item: object) -> dict[str, object]:
    properties = item.get("properties") if isinstance(item, dict) else None
    if not isinstance(properties, dict):
        raise ApiFailure(400, "VALIDATION_ERROR",
                         "Invalid input JSON: each input needs a 'properties' object")
    return properties
