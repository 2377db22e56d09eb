"""How the sandbox portal creates and merges contacts, following what HubSpot documents.

Creating (POST /crm/v3/objects/contacts and .../batch/create):
- Email is unique. A create with an email the portal already holds answers 409 CONFLICT
  "Contact already exists. Existing ID: <id>" (HubSpot's wording, as its client libraries'
  users report it). A batch is all or nothing: one known email fails the whole batch with
  that 409, naming the first existing contact only, and creates nothing
  (HubSpot/hubspot-api-python#51). An email of a merged-away contact belongs to the
  contact it went into, so it conflicts with that one.
- Validation is as for updates: an unknown or read-only property, a value that is not one
  of an enumeration's options, a bad number or owner is a 400 VALIDATION_ERROR whose message
  lists every bad property ("Property values were not valid: [...]", each with its `name`).

Merging (POST /crm/v3/objects/contacts/merge, `HubSpotSandbox.merge`):
- The survivor's empty properties are filled from the merged contact, its
  `hs_merged_object_ids` lists every id merged into it so far (semicolon-separated), its
  create date is the older one and its modification time is now.
- `keep_primary` (the default; how HubSpot merged contacts for years): the primary keeps its
  id. `new_record` (HubSpot's changelog "Updated merge functionality for contacts and
  companies"): a new contact with a new id is created from both, and both old ids go into
  its `hs_merged_object_ids`.
- Either way the old ids leave lists, searches and batch reads, a GET by an old id answers
  the survivor (HubSpot: "fetching any records using the original IDs will return the new
  merged record"), and the merged contacts' events belong to the survivor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from connectors.sandbox.hubspot.http import ApiFailure, not_found, validation_error
from connectors.sandbox.hubspot.state import Contact, PortalState
from connectors.sandbox.hubspot.validation import InputRejected

MergeMode = Literal["keep_primary", "new_record"]
MERGE_MODES: tuple[MergeMode, ...] = ("keep_primary", "new_record")
MERGED_IDS = "hs_merged_object_ids"
#: Properties a merge sets itself rather than filling from the merged contact.
_SYSTEM = frozenset({"hs_object_id", "createdate", "lastmodifieddate", MERGED_IDS})


def existing_contact(state: PortalState, email: str | None) -> Contact | None:
    """The live contact that owns this email (case-insensitive), if any: its own, or that
    of a contact merged into it."""
    wanted = (email or "").strip().lower()
    if not wanted:
        return None
    found = state.find("email", wanted)
    if found is not None:
        return found
    with state.lock:
        old = next((c.id for c in state.retired.values()
                    if (c.properties.get("email") or "").strip().lower() == wanted), None)
    current = state.current_id(old) if old is not None else None
    return state.contact(current) if current is not None else None


def conflict(existing: Contact) -> ApiFailure:
    """HubSpot's answer to creating a contact whose email it already has."""
    return ApiFailure(409, "CONFLICT", f"Contact already exists. Existing ID: {existing.id}")


def create_contacts(state: PortalState,
                    inputs: Sequence[dict[str, object]]) -> list[Contact]:
    """Create every input or none: each is validated and checked for a known email first.

    Raises ApiFailure: 400 VALIDATION_ERROR for the first invalid input, 409 CONFLICT for
    the first email the portal (or an earlier input of the same batch) already holds.
    """
    with state.lock:
        checked: list[dict[str, str | None]] = []
        emails: set[str] = set()
        for values in inputs:
            try:
                clean = state.check(dict(values))
            except InputRejected as rejected:
                raise ApiFailure(400, rejected.category, rejected.message) from None
            email = (clean.get("email") or "").strip().lower()
            existing = existing_contact(state, email)
            if existing is not None:
                raise conflict(existing)
            if email and email in emails:
                raise ApiFailure(409, "CONFLICT",
                                 f"Duplicate email in batch input: {email}. Each contact "
                                 "in a batch needs its own email.")
            emails.add(email)
            checked.append(clean)
        return [state.add(values) for values in checked]


def merge_contacts(state: PortalState, primary_id: str, merged_id: str,
                   mode: MergeMode = "keep_primary") -> Contact:
    """Merge `merged_id` into `primary_id` (see the module docstring); the survivor.

    Raises ApiFailure: 400 for merging a contact with itself, 404 for an unknown or
    already merged-away id.
    """
    if mode not in MERGE_MODES:
        raise ValueError(f"merge mode must be one of {MERGE_MODES}, got {mode!r}")
    with state.lock:
        if primary_id == merged_id:
            raise validation_error("A contact cannot be merged with itself: "
                                   "primaryObjectId and objectIdToMerge are the same")
        primary, merged = state.snapshot(primary_id), state.snapshot(merged_id)
        for wanted, found in ((primary_id, primary), (merged_id, merged)):
            if found is None:
                raise not_found(f"No contact with id {wanted} (it may have been merged "
                                "into another contact or never existed)")
        assert primary is not None and merged is not None
        values: dict[str, str | None] = {
            name: value for name, value in merged.properties.items()
            if name not in _SYSTEM and value not in (None, "")
            and primary.properties.get(name) in (None, "")}
        absorbed = [*_ids(primary), *(_ids(merged))]
        absorbed += [primary_id, merged_id] if mode == "new_record" else [merged_id]
        values[MERGED_IDS] = ";".join(dict.fromkeys(absorbed))
        created = min(primary.created_at, merged.created_at)
        if mode == "new_record":
            kept = {name: value for name, value in primary.properties.items()
                    if name not in _SYSTEM}
            survivor = state.add({**kept, **values}, created_at=created)
            state.retire(primary_id, survivor.id)
            state.retire(merged_id, survivor.id)
            return survivor
        state.retire(merged_id, primary_id)
        survivor = state.apply(primary_id, values)
        survivor.created_at = created
        state.stamp(survivor)
        return survivor


def _ids(contact: Contact) -> list[str]:
    raw = contact.properties.get(MERGED_IDS) or ""
    return [part for part in raw.split(";") if part]
