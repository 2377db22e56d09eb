"""HubSpot error bodies as the connector reads them: the category, a message short enough
to store, the properties the error names and, for a 409, the contact that already exists.

HubSpot names a bad property in two ways: inside the message of a validation error
("Property values were not valid: [{..., "name": "industry", ...}]") and, in newer
answers, in `context.propertyName` or an `errors[].context.propertyName` / `errors[].in`.
Both are read, so a failure can say "bad option on industry" whichever way it arrived.
`ERROR_CODES` maps HubSpot's codes onto syncer's causes (syncer/domain/errors.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from syncer.domain import errors
from syncer.domain.connector import ConnectorError

#: "Contact already exists. Existing ID: 12345" (409 CONFLICT on create).
EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class ErrorBody:
    """What syncer keeps of one HubSpot error body (never the whole body: it may hold
    personal data)."""

    category: str
    message: str
    fields: tuple[str, ...] = ()
    existing_id: str | None = None


class RequestRejected(ConnectorError):
    """A 400 for a whole request. HubSpot may refuse a whole batch for one bad input, so
    writes bisect the batch to find the bad inputs."""

    def __init__(self, detail: str, error: ErrorBody) -> None:
        super().__init__(detail)
        self.error = error
        self.category = error.category
        self.message = error.message


class Conflict(ConnectorError):
    """A 409: for a create, a contact with that email exists (`error.existing_id`). HubSpot
    fails a whole batch create for the first such email and names only that contact."""

    def __init__(self, detail: str, error: ErrorBody) -> None:
        super().__init__(detail)
        self.error = error
        self.existing_id = error.existing_id
        self.message = error.message


def read_error(body: object) -> ErrorBody:
    """The parts of a HubSpot error body (JSON text) syncer uses; tolerant of anything."""
    try:
        data = json.loads(body) if isinstance(body, (str, bytes, bytearray)) and body else {}
    except (TypeError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    message = str(data.get("message") or "")
    raw_details = data.get("errors")
    details: list[object] = raw_details if isinstance(raw_details, list) else []
    found = EXISTING_ID.search(message) or next(
        (m for m in (EXISTING_ID.search(str(_part(d, "message") or "")) for d in details) if m),
        None)
    context = data.get("context")
    return ErrorBody(
        category=str(data.get("category") or "UNKNOWN"), message=message[:MESSAGE_LIMIT],
        fields=property_names(message, context if isinstance(context, Mapping) else None,
                              details),
        existing_id=found.group(1) if found else None)


def property_names(message: str | None, context: Mapping[str, object] | None = None,
                   details: Iterable[object] | None = ()) -> tuple[str, ...]:
    """Every property an error names, in order, once each. `details` are the error's
    `errors` entries, as dicts or as the client's ErrorDetail models."""
    names: list[str] = []
    if message and "[" in message:
        try:
            listed = json.loads(message[message.index("["):])
        except ValueError:
            listed = None
        if isinstance(listed, list):
            names += [str(item["name"]) for item in listed
                      if isinstance(item, dict) and item.get("name")]
    names += _context_names(context)
    for detail in details or ():
        names += _context_names(_part(detail, "context"))
        where = _part(detail, "in") or _part(detail, "_in")
        if isinstance(where, str) and where:
            names.append(where)
    return tuple(dict.fromkeys(names))


def _context_names(context: object) -> list[str]:
    if not isinstance(context, Mapping):
        return []
    value = context.get("propertyName") or context.get("propertyNames") or []
    return [str(v) for v in ([value] if isinstance(value, str) else value) if v]


def _part(detail: object, name: str) -> object:
    """A key of an error entry, whether it is a dict or a client model."""
    if isinstance(detail, Mapping):
        return detail.get(name)
    return getattr(detail, name, None)


#: HubSpot's error categories and per-property codes, by the cause an admin acts on
#: (syncer/domain/errors.py); the wiring registers the table.
ERROR_CODES = errors.ErrorCodes.grouped("hubspot", {
    errors.RATE_LIMIT: ("RATE_LIMITS",),
    errors.VALIDATION: (
        "VALIDATION_ERROR", "INVALID_NUMBER", "INVALID_INTEGER", "INVALID_DATE",
        "INVALID_EMAIL", "PROPERTY_DOESNT_EXIST", "CONFLICT", "BAD_REQUEST", "MISSING_EMAIL",
        "OBJECT_ALREADY_EXISTS"),
    errors.BAD_PICKLIST: ("INVALID_OPTION",),
    errors.PERMISSION: ("READ_ONLY_VALUE", "MISSING_SCOPES"),
    errors.LOCKED: ("LOCKED",),
    errors.NOT_FOUND: ("OBJECT_NOT_FOUND",),
    errors.AUTH: ("INVALID_AUTHENTICATION", "EXPIRED_AUTHENTICATION"),
    errors.BAD_OWNER: ("INVALID_OWNER_ID",),
    errors.UNAVAILABLE: ("INTERNAL_ERROR", "TIMEOUT", "UNCONFIRMED"),
})
