"""A bounded cache of what was worked out from an object, found by the object's identity.

A full sync hands the store the same objects again and again: a decision's reasons tuple
when its decision is saved and when each CRM's writes are audited, a reasons list when its
write intent is announced and then its outcome rows in each CRM are appended. Hashing or
comparing those by value costs about as much as the work they would save (a list of a
dozen dicts, a 1.3 KB text), so the cache finds them by `id()`. It holds a reference to
each object it keeps, so an id cannot be handed to another object while its entry is
there, and drops the oldest entries past `limit`, so a run of any size keeps a few chunks'
worth.

The value is computed once per object: only objects whose content cannot change after they
are first seen may be keyed here (a tuple of frozen values; a list its owner never changes
once handed over: see where each cache is made).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: the limit of a cache of a sync's decisions or their reasons: a few chunks of a sync
#: (500 people each), enough to span a decision's save, its intents in each CRM and the
#: outcome rows a flush later (syncer/run/chunk.py), about 10 MB at most
A_FEW_CHUNKS = 2_048


class KeptByIdentity(Generic[K, V]):
    """`value(key, compute)`: `compute(key)` the first time `key` (this very object) is
    seen, the kept result after, for the last `limit` objects computed."""

    __slots__ = ("_kept", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: id(key) -> (key, value), oldest first; the key held so its id is not reused
        self._kept: OrderedDict[int, tuple[K, V]] = OrderedDict()

    def value(self, key: K, compute: Callable[[K], V]) -> V:
        kept = self._kept.get(id(key))
        if kept is not None:
            return kept[1]
        found = compute(key)
        self._kept[id(key)] = (key, found)
        if len(self._kept) > self.limit:
            self._kept.popitem(last=False)
        return found

    def __len__(self) -> int:
        return len(self._kept)
