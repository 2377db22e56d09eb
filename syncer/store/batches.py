"""Splitting the store's lookups into batches: keys a query at a time (an IN (...) list
of bounded length), and (connector, record id) pairs grouped by connector, so each
batch is one index search of (connector, record_id)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

#: keys per IN (...) list
CHUNK = 500
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def by_source(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(connector, record id) pairs as connector -> record ids, for chunked IN queries."""
    grouped: dict[str, list[str]] = {}
    for source, record_id in pairs:
        grouped.setdefault(source, []).append(record_id)
    return grouped
