"""A compact index of a World's activities by time, so sandboxes can serve millions lazily.

Both CRM APIs page activities in time order (HubSpot's events API by `occurredAt`,
Salesforce queries `ORDER BY CreatedDate, Id`), but a person's activity times only come out
of their random draws. One pass over the world records, per channel and per 15-minute
bucket, which activities fall there: 4 bytes (person index and ordinal) plus one byte (the
activity type) each, about 50 MB for a million people with ten activities. Serving a page
then means generating only the few hundred people of one bucket and sorting them exactly.

Building it also records every person's placement byte (World.flags), so enumerating the
contacts of one CRM costs an array lookup instead of a generation.

The index needs of a world only `IndexedWorld` (connectors/sandbox/world.py's World is
one, and builds its index from here); the worker processes that rebuild a world from its
spec run connectors/sandbox/index_worker.py, so this module never imports the World.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Protocol

from connectors.sandbox.world_tables import HISTORY_DAYS, MAX_ACTIVITIES_PER_PERSON
from connectors.sandbox.world_types import Drawn
from syncer.domain.types import ActivityType

BUCKET_SECONDS = 900
HISTORY_SECONDS = HISTORY_DAYS * 86_400
BUCKETS = -(-HISTORY_SECONDS // BUCKET_SECONDS)
CHANNELS = ("hubspot", "salesforce")
#: Activity types as one byte each, in declaration order.
KIND_CODES: dict[ActivityType, int] = {kind: code for code, kind in enumerate(ActivityType)}
KINDS_BY_CODE: tuple[ActivityType, ...] = tuple(ActivityType)
#: An entry packs (person index << ORDINAL_BITS) | ordinal of the activity in the person:
#: 4096 activities a person (World refuses a scale that could draw more), and a million
#: people still fit 32-bit entries.
ORDINAL_BITS = 12
MAX_ORDINAL = (1 << ORDINAL_BITS) - 1
assert MAX_ORDINAL + 1 >= MAX_ACTIVITIES_PER_PERSON


class IndexedWorld(Protocol):
    """What the index reads of a world (connectors.sandbox.world.World)."""

    @property
    def size(self) -> int: ...

    @property
    def now(self) -> datetime: ...

    def draw(self, i: int, with_activities: bool = True) -> Drawn: ...

    def flags(self, i: int) -> int: ...

    def remember_flag_block(self, start: int, flags: bytes) -> None: ...

    def spec(self) -> dict[str, object]: ...


def pack(person: int, ordinal: int) -> int:
    return (person << ORDINAL_BITS) | ordinal


def unpack(entry: int) -> tuple[int, int]:
    return entry >> ORDINAL_BITS, entry & MAX_ORDINAL


@dataclass(frozen=True)
class IndexStats:
    """What the index holds and what it cost (for the benchmark and `syncer sandbox`)."""

    people: int
    activities: dict[str, int]
    build_seconds: float
    approx_bytes: int


class WorldIndex:
    """Activities of a World by (channel, 15-minute bucket); see the module docstring.

    Bucket 0 starts at `world.now - 180 days + 1 s` (the oldest moment an activity can
    have) and buckets run forward in time; `bucket_of` maps any moment to its bucket.
    """

    def __init__(self, world: IndexedWorld, entries: dict[str, list[array[int] | None]],
                 kinds: dict[str, list[array[int] | None]], build_seconds: float) -> None:
        self.world = world
        self._entries = entries
        self._kinds = kinds
        self.build_seconds = build_seconds
        self.start = world.now - timedelta(seconds=HISTORY_SECONDS - 1)

    @classmethod
    def build(cls, world: IndexedWorld, workers: int = 1) -> WorldIndex:
        """One pass over every person of `world` (about 28 microseconds each), split over
        `workers` processes when more than one (each rebuilds the world from its seed)."""
        began = time.perf_counter()
        workers = max(1, min(workers, world.size // 10_000 or 1))
        bounds = [world.size * k // workers for k in range(workers + 1)]
        ranges = list(pairwise(bounds))
        parts = ([index_range(world, 0, world.size)] if workers == 1
                 else _in_processes(world, ranges))
        entries: dict[str, list[array[int] | None]] = {c: [None] * BUCKETS for c in CHANNELS}
        kinds: dict[str, list[array[int] | None]] = {c: [None] * BUCKETS for c in CHANNELS}
        for (start, _), (flags, part_entries, part_kinds) in zip(ranges, parts, strict=True):
            world.remember_flag_block(start, flags)
            for channel in CHANNELS:
                for bucket, held in enumerate(part_entries[channel]):
                    if held is None:
                        continue
                    codes = part_kinds[channel][bucket]
                    assert codes is not None
                    merged = entries[channel][bucket]
                    if merged is None:
                        entries[channel][bucket], kinds[channel][bucket] = held, codes
                    else:
                        merged.extend(held)
                        kinds[channel][bucket].extend(codes)  # type: ignore[union-attr]
        return cls(world, entries, kinds, time.perf_counter() - began)

    # -- people ------------------------------------------------------------------------
    def flags(self, person: int) -> int:
        return self.world.flags(person)

    # -- time ----------------------------------------------------------------------------
    def bucket_of(self, moment: datetime) -> int:
        """The bucket `moment` falls in: -1 before the first, BUCKETS after the last."""
        seconds = (moment - self.start).total_seconds()
        if seconds < 0:
            return -1
        return min(BUCKETS, int(seconds // BUCKET_SECONDS))

    def bucket_start(self, bucket: int) -> datetime:
        return self.start + timedelta(seconds=bucket * BUCKET_SECONDS)

    def entries(self, channel: str, bucket: int) -> Sequence[int]:
        held = self._entries[channel][bucket]
        return held if held is not None else ()

    def kinds(self, channel: str, bucket: int) -> Sequence[int]:
        held = self._kinds[channel][bucket]
        return held if held is not None else ()

    def count(self, channel: str, bucket: int, codes: Iterable[int] | None = None) -> int:
        """How many activities of `channel` (of the given type codes) fall in `bucket`."""
        held = self._kinds[channel][bucket]
        if held is None:
            return 0
        if codes is None:
            return len(held)
        raw = held.tobytes()
        return sum(raw.count(code) for code in codes)

    def stats(self) -> IndexStats:
        activities = {c: sum(len(a) for a in self._entries[c] if a is not None)
                      for c in CHANNELS}
        approx = self.world.size + sum(
            a.itemsize * len(a) + 64 for per in (*self._entries.values(), *self._kinds.values())
            for a in per if a is not None)
        return IndexStats(self.world.size, activities, self.build_seconds, approx)


Part = tuple[bytes, dict[str, list["array[int] | None"]], dict[str, list["array[int] | None"]]]


def _in_processes(world: IndexedWorld, ranges: list[tuple[int, int]]) -> list[Part]:
    """Index each range in a worker process (connectors/sandbox/index_worker.py), which
    rebuilds the world from its spec and sends its part back pickled on stdout. A plain
    subprocess, not multiprocessing: it needs nothing from the parent's __main__."""
    spec = dict(world.spec(), now=world.now.isoformat())
    workers = [subprocess.Popen([sys.executable, "-m", "connectors.sandbox.index_worker",
                                 json.dumps(spec), str(start), str(stop)],
                                stdout=subprocess.PIPE)
               for start, stop in ranges]
    parts = []
    for worker in workers:
        output, _ = worker.communicate()
        if worker.returncode != 0:
            raise RuntimeError(f"an index worker failed (exit {worker.returncode}); see its "
                               "error output above")
        parts.append(pickle.loads(output))  # our own child process wrote it
    return parts


def index_range(world: IndexedWorld, start: int, stop: int) -> Part:
    """Flags and per-bucket activity entries of people start..stop-1."""
    typecode = "I" if pack(world.size, 0) < 2**32 else "Q"
    entries: dict[str, list[array[int] | None]] = {c: [None] * BUCKETS for c in CHANNELS}
    kinds: dict[str, list[array[int] | None]] = {c: [None] * BUCKETS for c in CHANNELS}
    flags = bytearray(stop - start)
    last = HISTORY_SECONDS - 1
    codes = KIND_CODES
    draw = world.draw
    for person in range(start, stop):
        drawn = draw(person, True)
        flags[person - start] = drawn.flags
        activities = drawn.activities
        if len(activities) > MAX_ORDINAL + 1:
            raise ValueError(f"person {person} has {len(activities)} activities; the index "
                             f"holds at most {MAX_ORDINAL + 1}: lower activity_scale")
        base = person << ORDINAL_BITS
        for ordinal, (offset, kind, channel, _) in enumerate(activities):
            bucket = (last - offset) // BUCKET_SECONDS
            per_channel = entries[channel]
            held = per_channel[bucket]
            if held is None:
                held = per_channel[bucket] = array(typecode)
                kinds[channel][bucket] = array("B")
            held.append(base | ordinal)
            kinds[channel][bucket].append(codes[kind])  # type: ignore[union-attr]
    return bytes(flags), entries, kinds
