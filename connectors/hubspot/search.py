"""Incremental contact pulls through the search API, around its documented limits.

Search is the only HubSpot contact endpoint that filters on `lastmodifieddate`, but it
answers at most 10,000 results per query (a later `after` is a 400) and about five requests
per second. So the walk sorts by `hs_object_id` and, before a slice reaches the cap, starts
a new query from the last id seen (`hs_object_id > last`): any number of changed contacts
can be read, each once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from hubspot.crm.contacts import PublicObjectSearchRequest  # type: ignore[import-untyped]

SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
#: seconds between search requests: HubSpot allows about 5 per second.
SEARCH_INTERVAL = 0.21


class SearchGate:
    """Spaces search requests so the per-second search limit is never hit."""

    def __init__(self, interval: float = SEARCH_INTERVAL,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = interval
        self._sleep = sleep
        self._last = 0.0

    def wait(self) -> None:
        delay = self._last + self.interval - time.monotonic()
        if delay > 0:
            self._sleep(delay)
        self._last = time.monotonic()


def modified_since(since: datetime, properties: list[str],
                   search: Callable[[PublicObjectSearchRequest], Any],
                   limit: int = SEARCH_LIMIT, cap: int = SEARCH_CAP,
                   extra_filters: Sequence[Mapping[str, str]] = ()) -> Iterator[list[Any]]:
    """Pages of contacts with lastmodifieddate >= since (and every `extra_filters`
    condition), in id order, each contact once."""
    since_ms = str(int(since.timestamp() * 1000))
    last_id = 0
    while True:
        after: str | None = None
        fetched = 0
        slice_start = str(last_id)  # fixed for the whole query, or `after` would shift
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": since_ms},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": slice_start},
                    *(dict(f) for f in extra_filters),
                ]}],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=properties, limit=limit, after=after)
            body = search(request)
            results = list(body.results or [])
            if results:
                yield results
                last_id = max(last_id, *(int(r.id) for r in results))
            fetched += len(results)
            paging = body.paging
            after = paging.next.after if paging is not None and paging.next else None
            if after and fetched + limit <= cap:
                continue
            more = after or (body.total is not None and body.total > fetched)
            if not more or not results:
                return
            break  # this query cannot page further (the cap): restart from the last id
