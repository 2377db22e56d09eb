"""Python's cyclic garbage collector, set for a sync while one runs.

A sync allocates millions of small containers (rows, dicts, decisions, audit rows) that
mostly live for one chunk of 500 people. With the interpreter's default thresholds
(700, 10, 10) the young generation is collected every 700 net allocations, so a chunk's
objects survive a few young collections into the oldest generation, and the full
collections that follow walk every live object of the process: the store's caches, the
routing index, the loaded people. Measured with gc.callbacks in a 30,000-person full sync
(bench/RESULTS.md): 70 full collections of about 110 ms each, 10 s of collector time in
59 s of syncer's CPU, and the share grows with the people.

While a run is under way the young generation is collected every YOUNG_THRESHOLD net
allocations instead: a chunk's objects are mostly freed by reference counting before a
collection sees them, and full collections all but stop. What is left for the collector
(reference cycles) waits for at most that many net allocations, a few MB. The objects
alive when the first run starts (modules, configuration, clients) are moved out of the
collector's sight (`gc.freeze`) for the run's length.

Runs may overlap in one process (tenants on a worker, the web admin's threads), so the
first run to start sets the thresholds and the last to end puts back what was there.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: net allocations of container objects between two young collections during a run
#: (the interpreter's default is 700)
YOUNG_THRESHOLD = 50_000

_lock = threading.Lock()
_running = 0
_before: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def collector_for_sync() -> Iterator[None]:
    """Raise the young generation's threshold (and freeze what is alive) while at least
    one sync of this process runs."""
    global _running, _before
    with _lock:
        if _running == 0:
            _before = gc.get_threshold()
            gc.freeze()
            if _before[0] != 0:  # 0: collection turned off, and left so
                gc.set_threshold(max(YOUNG_THRESHOLD, _before[0]), *_before[1:])
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_before)
                gc.unfreeze()
