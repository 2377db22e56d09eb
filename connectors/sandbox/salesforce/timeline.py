"""CampaignMember and Task rows in (CreatedDate, Id) order, from the world's time index.

Incremental pulls ask `WHERE CreatedDate >= :since ORDER BY CreatedDate, Id`. The world's
index says which people have salesforce activities in each 15-minute bucket, so a page
generates those people only and sorts the bucket exactly; counting a range adds up bucket
counts from the index and looks closely only at the two buckets at its ends.
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from connectors.sandbox.index import BUCKETS, KIND_CODES, unpack
from connectors.sandbox.salesforce.rows import Row, stamp, text
from connectors.sandbox.salesforce.schema import id_number
from connectors.sandbox.salesforce.tables import ActivityTable
from connectors.sandbox.world import SALESFORCE_CONTACT

CACHED_BUCKETS = 16
#: fields a residual filter may use and still be counted from the index alone.
PERSON_FIELDS = frozenset({"whoid", "contactid", "isdeleted"})


@dataclass(frozen=True)
class TimeRange:
    """CreatedDate bounds from a WHERE clause; None: unbounded on that side."""

    low: datetime | None = None
    low_inclusive: bool = True
    high: datetime | None = None
    high_inclusive: bool = True

    def admits(self, moment: datetime) -> bool:
        if self.low is not None and (moment < self.low or (
                moment == self.low and not self.low_inclusive)):
            return False
        return self.high is None or moment < self.high or (
            moment == self.high and self.high_inclusive)


class ActivityTimeline:
    """Time-ordered access to one ActivityTable. `current` maps a generated row to the
    row as it stands now (the org's overlay of changed rows)."""

    def __init__(self, table: ActivityTable, current: Callable[[Row], Row],
                 created: Callable[[], list[Row]] = list) -> None:
        self.table = table
        #: the rows inserted since (a rep's logged call): held by the org, merged in order
        self._created = created
        self.world = table.world
        self._current = current
        self._codes = frozenset(KIND_CODES[kind] for kind in table.kinds)
        self._cache: OrderedDict[int, list[Row]] = OrderedDict()
        self._lock = threading.Lock()

    def _span(self, window: TimeRange) -> range:
        index = self.world.index()
        low = 0 if window.low is None else max(0, index.bucket_of(window.low))
        high = BUCKETS - 1 if window.high is None else min(BUCKETS - 1,
                                                            index.bucket_of(window.high))
        return range(low, high + 1)

    def bucket(self, bucket: int) -> list[Row]:
        """The table's rows of one bucket as generated, in (CreatedDate, Id) order."""
        with self._lock:
            cached = self._cache.get(bucket)
            if cached is not None:
                self._cache.move_to_end(bucket)
                return cached
        index = self.world.index()
        wanted: defaultdict[int, set[int]] = defaultdict(set)
        for entry, code in zip(index.entries("salesforce", bucket),
                               index.kinds("salesforce", bucket), strict=True):
            if code in self._codes:
                person, ordinal = unpack(entry)
                wanted[person].add(ordinal)
        rows = [row for person, ordinals in wanted.items()
                for schema, _, row in self.table.seeder.activity_rows(person, ordinals)
                if schema is self.table.schema]
        rows.sort(key=lambda r: (stamp(r), id_number(text(r, "Id")) or 0))
        with self._lock:
            self._cache[bucket] = rows
            while len(self._cache) > CACHED_BUCKETS:
                self._cache.popitem(last=False)
        return rows

    def rows(self, window: TimeRange, after: tuple[datetime, int] | None
             ) -> Iterator[tuple[tuple[datetime, int], Row]]:
        """((CreatedDate, id number), current row) in order, strictly after `after`."""
        span = self._span(window)
        if after is not None:
            span = range(max(span.start, self.world.index().bucket_of(after[0])), span.stop)
        created = sorted((((stamp(row), id_number(text(row, "Id")) or 0), row)
                          for row in self._created()), key=lambda pair: pair[0])
        inserted = ((key, row) for key, row in created
                    if (after is None or key > after) and window.admits(key[0]))
        yield from heapq.merge(self._generated(span, window, after), inserted,
                               key=lambda pair: pair[0])

    def _generated(self, span: range, window: TimeRange, after: tuple[datetime, int] | None
                   ) -> Iterator[tuple[tuple[datetime, int], Row]]:
        for bucket in span:
            for row in self.bucket(bucket):
                key = (stamp(row), id_number(text(row, "Id")) or 0)
                if (after is None or key > after) and window.admits(key[0]):
                    yield key, self._current(row)

    def count(self, window: TimeRange, residual: Callable[[Row], bool] | None,
              residual_fields: frozenset[str], changed: set[int]) -> int:
        """How many rows fall in `window` and pass `residual`. Interior buckets count from
        the index (or from cheap per-person fields) unless a row there was changed."""
        inserted = sum(1 for row in self._created() if window.admits(stamp(row))
                       and (residual is None or residual(row)))
        span = self._span(window)
        if not span:
            return inserted
        cheap = residual is None or residual_fields <= PERSON_FIELDS
        total = inserted
        for bucket in span:
            edge = bucket in (span.start, span.stop - 1)
            touched = bool(changed) and any(
                entry + 1 in changed for entry in self.world.index().entries("salesforce",
                                                                             bucket))
            if edge or touched or not cheap:
                total += sum(1 for row in self.bucket(bucket)
                             if window.admits(stamp(row))
                             and (residual is None or residual(self._current(row))))
            elif residual is None:
                total += self.world.index().count("salesforce", bucket, self._codes)
            else:
                total += self._count_cheap(bucket, residual)
        return total

    def _count_cheap(self, bucket: int, residual: Callable[[Row], bool]) -> int:
        index, seeder, members = self.world.index(), self.table.seeder, self.table.members
        whom: dict[int, Row] = {}
        total = 0
        for entry, code in zip(index.entries("salesforce", bucket),
                               index.kinds("salesforce", bucket), strict=True):
            if code not in self._codes:
                continue
            person = unpack(entry)[0]
            row = whom.get(person)
            if row is None:
                record_id = seeder.record_id(person)
                if members:
                    contact = self.world.flags(person) & SALESFORCE_CONTACT
                    row = {"ContactId": record_id if contact else None, "IsDeleted": False}
                else:
                    row = {"WhoId": record_id, "IsDeleted": False}
                whom[person] = row
            total += residual(row)
        return total
