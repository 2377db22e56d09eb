"""Time Python's garbage collector in every process started with this folder on PYTHONPATH
and SYNCER_GC_PROBE=1 set (bench_sync's syncer child inherits both):

    SYNCER_GC_PROBE=1 PYTHONPATH=bench/gc_probe python -m bench.bench_sync --people 30000

At exit each process prints to stderr, per generation, how many collections ran and the
process CPU they took (gc.callbacks around each collection; a collection holds the
interpreter lock, so other threads add little). This is how the collector's share of a
sync was found (bench/RESULTS.md, syncer/run/collector.py).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import time

if os.environ.get("SYNCER_GC_PROBE"):
    _spent = {generation: [0, 0.0] for generation in range(3)}
    _started: dict[int, float] = {}

    def _timed(phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            _started[generation] = time.process_time()
        elif generation in _started:
            _spent[generation][0] += 1
            _spent[generation][1] += time.process_time() - _started.pop(generation)

    def _report() -> None:
        total = sum(seconds for _, seconds in _spent.values())
        parts = ", ".join(f"gen{g} {n} in {s:.2f} s" for g, (n, s) in _spent.items())
        sys.stderr.write(f"gc probe {' '.join(sys.argv[:2])}: {parts}; {total:.2f} s of "
                         f"{time.process_time():.2f} s CPU\n")

    gc.callbacks.append(_timed)
    atexit.register(_report)
