"""HubSpot answers read as JSON instead of the client's model objects.

hubspot-api-client turns every answer into model objects and parses every timestamp with
dateutil: for a page of 100 contacts or 1,000 events that cost more CPU than everything
else syncer did with them (profiled in bench/RESULTS.md, "Syncer's own CPU per person").
The connector still sends each request through the real client (auth, query encoding,
error answers raised as its ApiException), but asks for the raw response
(`_preload_content=False`) and reads it here: `JsonObject` gives the attributes the
connector reads from the models (`results`, `paging.next.after`, `updated_at`, ...) over
the JSON dict, and parses a timestamp only when it is read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dateutil import parser as dateutil_parser  # type: ignore[import-untyped]

#: the model attributes the connector reads, as their JSON keys; a name not listed is an
#: AttributeError, as on a model
KEYS = {
    "results": "results", "paging": "paging", "next": "next", "after": "after",
    "total": "total", "id": "id", "properties": "properties", "archived": "archived",
    "updated_at": "updatedAt", "created_at": "createdAt", "archived_at": "archivedAt",
    "occurred_at": "occurredAt", "object_id": "objectId", "object_type": "objectType",
    "event_type": "eventType", "object_write_trace_id": "objectWriteTraceId",
    "errors": "errors", "category": "category", "message": "message", "context": "context",
    "status": "status", "email": "email", "first_name": "firstName", "last_name": "lastName",
}
#: attributes that hold objects of their own (wrapped); others are returned as they are
#: (properties and an error's context stay plain dicts, as the models keep them)
NESTED = frozenset({"results", "paging", "next", "errors"})
#: attributes the models hold as datetimes
TIMES = frozenset({"updated_at", "created_at", "archived_at", "occurred_at"})


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 stamp as the client would give it (dateutil), the fast way first."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        parsed: datetime = dateutil_parser.parse(text)
        return parsed


class JsonObject:
    """Read-only model-like access to one JSON object of a HubSpot answer."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        key = KEYS.get(name)
        if key is None:
            raise AttributeError(name)
        value = self._data.get(key)
        if value is None:
            return None
        if name in TIMES:
            return parse_datetime(value) if isinstance(value, str) else value
        if name in NESTED:
            if isinstance(value, list):
                return [JsonObject(v) if isinstance(v, dict) else v for v in value]
            return JsonObject(value) if isinstance(value, dict) else value
        return value


def answer(response: Any) -> tuple[Any, int, Any]:
    """(body, status, headers) of a request made with `_preload_content=False`, as the
    `*_with_http_info` methods return them for the models. An answer that is already such
    a tuple (a stand-in API in tests) passes as it is."""
    if isinstance(response, tuple):
        return response
    body = response.data
    parsed = json.loads(body) if body else {}
    return (JsonObject(parsed) if isinstance(parsed, dict) else parsed,
            int(response.status), response.headers)
