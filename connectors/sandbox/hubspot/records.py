"""One record as the sandbox answers it, for every HubSpot object type (contacts, companies,
deals): the same keys, the same choice of properties and the same timestamps, written once
so that the contact handlers (writes.py) and the generic objects API (objects_api.py) cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import datetime
from typing import Protocol

from connectors.sandbox.hubspot.http import Json, iso_millis


class AnsweredRecord(Protocol):
    """What a record answer reads of a contact (state.Contact) or another object
    (objects.CrmRecord)."""

    @property
    def id(self) -> str: ...

    @property
    def properties(self) -> dict[str, str | None]: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def updated_at(self) -> datetime: ...

    @property
    def archived_at(self) -> datetime | None: ...


def record_answer(record: AnsweredRecord, names: list[str] | None,
                  default_returned: Iterable[str], always_returned: Iterable[str],
                  known: Container[str]) -> Json:
    """A record as HubSpot answers it: the named (or default) properties plus the ones
    always returned; HubSpot omits names it does not know (not in `known`) and returns null
    for known but unset ones."""
    wanted = dict.fromkeys([*(names or default_returned), *always_returned])
    properties = {n: record.properties.get(n) for n in wanted if n in known}
    data: Json = {"id": record.id, "properties": properties,
                  "createdAt": iso_millis(record.created_at),
                  "updatedAt": iso_millis(record.updated_at),
                  "archived": record.archived_at is not None}
    if record.archived_at is not None:
        data["archivedAt"] = iso_millis(record.archived_at)
    return data
