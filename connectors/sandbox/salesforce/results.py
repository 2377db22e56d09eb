"""The matching rows of one SOQL query, produced page by page instead of held.

A query cursor on a million-row table must not keep the rows (nor their ids) in memory, so
a result is a stream of (key, row) in result order that can restart after any key: each
page resumes from the key of the row before it (a checkpoint), and only the current page's
rows are generated. Small results (static tables) are simply a list.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Generic, Protocol, TypeVar

from connectors.sandbox.salesforce.rows import Row

#: what orders a result and is where a later page resumes: an id number, a (CreatedDate,
#: id number) pair, or a sort key ending with the id number
K = TypeVar("K")
#: a stream of (key, row) in result order, restarting after a key (None: the start)
Stream = Callable[[K | None], Iterator[tuple[K, Row]]]
#: the key of a result in ORDER BY order: the sort values, then the id number
SortKey = tuple[object, ...]
#: a sorted result up to this many matches keeps its (sort key, id number) list.
SORT_IN_MEMORY_LIMIT = 200_000
#: beyond it, each chunk of a sorted result is one bounded selection over the table.
SELECTION_CHUNK = 2_000


class QueryResult(Protocol):
    """What a query cursor pages through."""

    @property
    def total(self) -> int: ...

    def page(self, offset: int, size: int) -> list[Row]: ...


class MaterializedResult:
    """A result small enough to hold (stored tables)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    @property
    def total(self) -> int:
        return len(self.rows)

    def page(self, offset: int, size: int) -> list[Row]:
        return self.rows[offset:offset + size]


class StreamResult(Generic[K]):
    """A result produced by `stream(after_key)`, with SOQL's OFFSET (`skip`) and LIMIT
    (`cap`) applied; `matches` is how many rows the stream yields in all."""

    def __init__(self, stream: Stream[K], matches: int, skip: int = 0,
                 cap: int | None = None) -> None:
        self._stream = stream
        self._skip = skip
        self._total = max(0, matches - skip)
        if cap is not None:
            self._total = min(self._total, cap)
        #: stream position -> key of the row just before it (None: the start).
        self._checkpoints: dict[int, K | None] = {0: None}
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return self._total

    def page(self, offset: int, size: int) -> list[Row]:
        wanted = max(0, min(size, self._total - offset))
        if wanted == 0:
            return []
        position = self._skip + offset
        with self._lock:
            start = max(p for p in self._checkpoints if p <= position)
            key = self._checkpoints[start]
        rows: list[Row] = []
        last: K | None = key
        for keyed in islice(self._stream(key), position - start, position - start + wanted):
            last = keyed[0]
            rows.append(keyed[1])
        with self._lock:
            if len(self._checkpoints) > 10_000:  # a very long walk: keep memory bounded
                self._checkpoints = {0: None}
            self._checkpoints[position + len(rows)] = last
        return rows


def count(stream: Iterable[object]) -> int:
    return sum(1 for _ in stream)


def sorted_stream(candidates: Callable[[], Iterator[tuple[SortKey, int]]],
                  fetch: Callable[[int], Row | None], matches: int) -> Stream[SortKey]:
    """A stream in sort-key order over `candidates()` ((sort key, id number) of every
    match; the key must end with the number, so keys are unique).

    Up to SORT_IN_MEMORY_LIMIT matches the sorted keys are kept; beyond, each chunk of
    SELECTION_CHUNK rows is a fresh bounded selection over the candidates (memory stays
    small, at the price of one scan per chunk).
    """
    kept: list[tuple[SortKey, int]] | None = None
    if matches <= SORT_IN_MEMORY_LIMIT:
        kept = sorted(candidates())

    def from_kept(after: SortKey | None) -> Iterator[tuple[SortKey, Row]]:
        assert kept is not None
        start = 0 if after is None else _bisect_after(kept, after)
        for key, number in kept[start:]:
            row = fetch(number)
            if row is not None:
                yield key, row

    def by_selection(after: SortKey | None) -> Iterator[tuple[SortKey, Row]]:
        while True:
            chunk = heapq.nsmallest(SELECTION_CHUNK, (c for c in candidates()
                                                      if after is None or c[0] > after))
            for key, number in chunk:
                row = fetch(number)
                if row is not None:
                    yield key, row
            if len(chunk) < SELECTION_CHUNK:
                return
            after = chunk[-1][0]
    return from_kept if kept is not None else by_selection


def _bisect_after(kept: list[tuple[SortKey, int]], after: SortKey) -> int:
    low, high = 0, len(kept)
    while low < high:
        middle = (low + high) // 2
        if kept[middle][0] <= after:
            low = middle + 1
        else:
            high = middle
    return low
