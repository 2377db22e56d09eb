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

from connectors.sandbox.faults import HubSpotLimits
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
from connectors.sandbox.hubspot.history import property_history
from connectors.sandbox.hubspot.http import (
    PLAN_KEY,
    Answer,
    ApiFailure,
    Json,
    iso_millis,
    json_body,
    property_names,
    validation_error,
)
from connectors.sandbox.hubspot.identity import (
    MergeMode,
    create_contacts,
    merge_contacts,
)
from connectors.sandbox.hubspot.records import record_answer
from connectors.sandbox.hubspot.schema import ALWAYS_RETURNED, DEFAULT_RETURNED
from connectors.sandbox.hubspot.state import Contact, PortalState
from connectors.sandbox.hubspot.validation import InputRejected

NOT_FOUND_MESSAGE = ("Could not get some CONTACT objects, they may be deleted or not exist. "
                     "Check that ids are valid.")


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
        known = self.state.properties
        data = record_answer(contact, names, DEFAULT_RETURNED, ALWAYS_RETURNED, known)
        if with_history:
            data["propertiesWithHistory"] = {
                name: [{"value": change.value, "timestamp": iso_millis(change.at),
                        "sourceType": change.source}
                       for change in property_history(contact, name)]
                for name in dict.fromkeys(with_history) if name in known}
        return data

    # -- create ------------------------------------------------------------------------
    def create_contact(self, request: Request, args: dict[str, str]) -> Answer:
        """One contact: 201 with it, 409 for a known email, 400 for invalid values."""
        properties = input_properties(json_body(request))
        [contact] = create_contacts(self.state, [properties])
        return 201, self.contact_json(contact, list(properties) or None)

    def batch_create(self, request: Request, args: dict[str, str]) -> Answer:
        """All inputs or none (see sandbox_identity); results echo `objectWriteTraceId`."""
        _, inputs = batch_inputs(request, self.limits.batch_max)
        started = iso_millis(datetime.now(timezone.utc))
        properties = [input_properties(item) for item in inputs]
        made = create_contacts(self.state, properties)
        results = []
        for item, values, contact in zip(inputs, properties, made, strict=True):
            results.append(echo_trace(self.contact_json(contact, list(values) or None), item))
        return batch_response(results, [], started, 201)

    # -- update ------------------------------------------------------------------------
    def batch_update(self, request: Request, args: dict[str, str]) -> Answer:
        _, inputs = batch_inputs(request, self.limits.batch_max)
        return update_batch(inputs, _ContactUpdates(self), request.environ.get(PLAN_KEY),
                            NOT_FOUND_MESSAGE, lock=self.state.lock,
                            value_details=False)

    def update_record(self, request: Request, args: dict[str, str]) -> Answer:
        """PATCH one contact (by id, or `idProperty`): 200 with the written properties;
        invalid values are a 400, an unknown contact a 404."""
        properties = input_properties(json_body(request))
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
            raise rejected_failure(rejected) from None
        contact = self.state.apply(found.id, clean)
        self.recent_writes.append(found.id)
        return 200, self.contact_json(contact, list(clean) or None)

    def batch_upsert(self, request: Request, args: dict[str, str]) -> Answer:
        """Create or update by a unique property (`idProperty` email): each result says
        whether it is `new`; an invalid input fails the batch (400), as a create does."""
        _, inputs = batch_inputs(request, self.limits.batch_max)
        started = iso_millis(datetime.now(timezone.utc))
        planned: list[tuple[str, dict[str, str | None]]] = []
        for item in inputs:
            key = str(item.get("id", "")).strip() if isinstance(item, dict) else ""
            if not isinstance(item, dict) or item.get("idProperty") != "email" or not key:
                raise validation_error("Each upsert input needs an id and idProperty "
                                       "'email' (the sandbox upserts contacts by email)")
            try:
                planned.append((key, self.state.check({**input_properties(item), "email": key})))
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
        body, inputs = batch_inputs(request, self.limits.batch_max)
        id_property = body.get("idProperty")
        names = property_names(body.get("properties"))
        history = property_names(body.get("propertiesWithHistory"))
        started = iso_millis(datetime.now(timezone.utc))
        results: list[Json] = []
        missing: list[str] = []
        for record_id in dict.fromkeys(input_ids(inputs)):
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
        _, inputs = batch_inputs(request, self.limits.batch_max)
        for record_id in input_ids(inputs):
            with contextlib.suppress(InputRejected):
                self.state.archive(record_id)
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


class _ContactUpdates:
    """The portal's contacts as `update_batch` writes them (each write remembered for the
    echo of syncer's own writes)."""

    def __init__(self, writes: ContactWrites) -> None:
        self.writes = writes

    def exists(self, record_id: str) -> bool:
        return self.writes.state.contact(record_id) is not None

    def check(self, properties: dict[str, object]) -> dict[str, str | None]:
        return self.writes.state.check(properties)

    def write(self, record_id: str, values: dict[str, str | None]) -> Json:
        contact = self.writes.state.apply(record_id, values)
        self.writes.recent_writes.append(record_id)
        return self.writes.contact_json(contact, list(values))
