"""Walking HubSpot's `after` paging cursors, each page with the cursor that follows it.

HubSpot's list cursors are the next object's id, so a cursor kept in the state outlives the
process that read the page: a full pull killed half way goes on from it (syncer/run/pull.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from syncer.domain.connector import ConnectorError

#: makes one request, with retries (HubSpotConnector._call): (body, status)
Call = Callable[[str, Callable[[], tuple[Any, int, Any]]], tuple[Any, int]]


def walk(call: Call, what: str, fetch: Callable[[str | None], Any], after: str | None
         ) -> Iterator[tuple[list[Any], str | None]]:
    """Pages from `after` (None: the start), each with the cursor that follows it (None:
    the last). A cursor HubSpot hands out twice stops the walk loudly."""
    seen: set[str] = set()
    while True:
        def request(cursor: str | None = after) -> Any:
            return fetch(cursor)
        body, _ = call(what, request)
        paging = body.paging
        after = paging.next.after if paging is not None and paging.next else None
        yield list(body.results or []), after or None
        if not after:
            return
        if after in seen:
            raise ConnectorError(f"{what}: HubSpot repeated paging cursor {after!r}; "
                                 "stopping instead of looping")
        seen.add(after)
