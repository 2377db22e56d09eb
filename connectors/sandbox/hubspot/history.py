"""The history of a sandbox contact's property values (HubSpot's propertiesWithHistory).

Only changes are recorded (on the contact, newest first); a value a contact was seeded with
is its history's oldest entry, an IMPORT at createdAt, computed when asked for, so a
portal of a million untouched contacts records nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Change:
    """One value a property took (HubSpot's ValueWithTimestamp): "" for a cleared value;
    `source` is HubSpot's sourceType (IMPORT for seeded values, API, CRM_UI)."""

    value: str
    at: datetime
    source: str


class Recorded(Protocol):
    """What a history is read from: a contact (state.Contact, which records its changes
    here, so this module names it by what it reads instead of importing it back)."""

    @property
    def properties(self) -> Mapping[str, str | None]: ...

    @property
    def history(self) -> Mapping[str, list[Change]]: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def updated_at(self) -> datetime: ...


#: properties HubSpot computes itself: their history is their current value.
CALCULATED = frozenset({"createdate", "lastmodifieddate", "hs_object_id"})


def property_history(contact: Recorded, name: str) -> list[Change]:
    """Every value property `name` of `contact` took, newest first (HubSpot's
    propertiesWithHistory): the recorded changes, then the value it was seeded with (an
    IMPORT at createdAt); empty for a property never set."""
    if name in CALCULATED or name not in contact.history:
        value = contact.properties.get(name)
        if value in (None, ""):
            return []
        assert value is not None
        if name in CALCULATED:
            at = contact.updated_at if name == "lastmodifieddate" else contact.created_at
            return [Change(value, at, "CALCULATED")]
        return [Change(value, contact.created_at, "IMPORT")]
    return contact.history[name]
