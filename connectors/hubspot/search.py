"""Incremental contact pulls through the search API, around its documented limits.

Search is the only HubSpot contact endpoint that filters on `lastmodifieddate`, but it
answers at most 10,000 results per query (a later `after` is a 400) and about five requests
per second. So the walk sorts by `hs_object_id` and, before a slice reaches the cap, starts
a new query from the last id seen (`hs_object_id > last`): any number of changed contacts
can be read, each once. Companies walk the same way on their own stamp property,
`hs_lastmodifieddate` (`stamp=`, connectors/hubspot/companies.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

from hubspot.crm.contacts import PublicObjectSearchRequest  # type: ignore[import-untyped]

from connectors.hubspot.answers import CrmObject, Page, next_after
from connectors.hubspot.raw import parse_datetime

SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
#: the modification stamp contacts are searched on (companies: hs_lastmodifieddate)
CONTACT_STAMP = "lastmodifieddate"
#: seconds between search requests: HubSpot allows about 5 per second.
SEARCH_INTERVAL = 0.21
#: one search request: the request -> its answer as a page of contacts
Search = Callable[[PublicObjectSearchRequest], Page[CrmObject]]


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


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def time_ranges(since: datetime, skip: Sequence[tuple[datetime, datetime]] = (),
                stamp: str = CONTACT_STAMP) -> list[list[dict[str, str]]]:
    """`stamp` (lastmodifieddate) filters, one list per filter group (HubSpot ORs the groups), for
    stamps at or after `since` except those in any (start, end] of `skip`: the stretches
    that hold only syncer's own writes (syncer/store/echo.py)."""
    groups: list[list[dict[str, str]]] = []
    low, operator = _millis(since), "GTE"
    for start, end in sorted((_millis(s), _millis(e)) for s, e in skip):
        if end < low or (end == low and operator == "GT"):
            continue
        if start >= low:
            groups.append([{"propertyName": stamp, "operator": operator,
                            "value": str(low)},
                           {"propertyName": stamp, "operator": "LTE",
                            "value": str(start)}])
        low, operator = end, "GT"
    groups.append([{"propertyName": stamp, "operator": operator, "value": str(low)}])
    return groups


def modified_since(since: datetime, properties: list[str],
                   search: Search, limit: int = SEARCH_LIMIT, cap: int = SEARCH_CAP,
                   extra_filters: Sequence[Mapping[str, str]] = (),
                   skip: Sequence[tuple[datetime, datetime]] = (),
                   stamp: str = CONTACT_STAMP) -> Iterator[list[CrmObject]]:
    """Pages of records (contacts, or companies with `stamp` hs_lastmodifieddate) with
    `stamp` >= since but in none of the `skip` ranges (start, end], and every
    `extra_filters` condition, in id order, each record once. Each range left out costs
    one more filter group (HubSpot allows five)."""
    ranges = time_ranges(since, skip, stamp)
    last_id = 0
    while True:
        after: str | None = None
        fetched = 0
        slice_start = str(last_id)  # fixed for the whole query, or `after` would shift
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": [
                    *times,
                    {"propertyName": "hs_object_id", "operator": "GT", "value": slice_start},
                    *(dict(f) for f in extra_filters),
                ]} for times in ranges],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=properties, limit=limit, after=after)
            body = search(request)
            results = body["results"]
            if results:
                yield results
                last_id = max(last_id, *(int(r["id"]) for r in results))
            fetched += len(results)
            after = next_after(body)
            if after and fetched + limit <= cap:
                continue
            more = after or body.get("total", 0) > fetched
            if not more or not results:
                return
            break  # this query cannot page further (the cap): restart from the last id


def newest_stamp(search: Search, stamp: str = CONTACT_STAMP) -> datetime | None:
    """The newest `stamp` (lastmodifieddate; companies: hs_lastmodifieddate) in the
    portal (one request), or None when empty."""
    request = PublicObjectSearchRequest(
        filter_groups=[], sorts=[{"propertyName": stamp, "direction": "DESCENDING"}],
        properties=[stamp], limit=1)
    results = search(request)["results"]
    newest = results[0].get("updatedAt") if results else None
    return parse_datetime(newest) if newest else None


def records_after(last_id: int, properties: list[str],
                  search: Search, limit: int = SEARCH_LIMIT
                  ) -> tuple[list[CrmObject], int | None]:
    """One page of records (contacts, or companies with their search) with an id above
    `last_id`, in id order, and the id to go on after (None: the listing is done). Each
    page is a query of its own, so the search's result cap never applies and a stopped
    listing resumes by id."""
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_object_id", "operator": "GT",
                                     "value": str(last_id)}]}],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=properties, limit=limit)
    body = search(request)
    results = body["results"]
    more = len(results) == limit or next_after(body) is not None
    return results, (max(int(r["id"]) for r in results) if results and more else None)
