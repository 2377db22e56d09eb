"""Run a few independent pieces of one stage at once, a thread each, as one stage.

Why threads: a run spends much of its time waiting on the CRMs (HTTP round trips, the
sandbox or the CRM building a result set, rate-limit pauses). While HubSpot's pull waits
out its rate limit, Salesforce's can be reading a Bulk result set; while a batch of writes
is on the wire, the next chunk of people can be decided. Python threads overlap exactly
those waits (the interpreter lock is free while a thread waits on a socket or sleeps).

Each lane runs in a copy of the caller's context, so the run's log fields, its progress
display and the store's write fence (Store.fenced) travel with it; the store takes its write
transactions one at a time (Store.transaction), so two lanes never interleave inside one.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from queue import Queue
from typing import TypeVar

T = TypeVar("T")

#: A lane's work: it is given the event set when another lane failed, and should stop at
#: its next safe point once it is set (between pages, as it would for a stop request).
Lane = Callable[[threading.Event], T]


def run_lanes(lanes: Mapping[str, Lane[T]]) -> dict[str, T]:
    """Run every lane at once and return their results by name. When one raises, the
    others are told to stop (their event is set) and waited for, then the first error (in
    the order of `lanes` among those that failed together) is raised; nothing is left
    running. A single lane runs in the calling thread, as if this helper were not there."""
    aborted = threading.Event()
    if len(lanes) <= 1:
        return {name: lane(aborted) for name, lane in lanes.items()}
    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="syncer-lane") as pool:
        futures: dict[str, Future[T]] = {
            name: pool.submit(contextvars.copy_context().run, lane, aborted)
            for name, lane in lanes.items()}
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        failed = [name for name, future in futures.items()
                  if future in done and future.exception() is not None]
        if failed:
            aborted.set()
        # leaving the pool waits for every lane (with none failed, all are done already)
    if failed:
        error = futures[failed[0]].exception()
        assert error is not None
        raise error
    return {name: future.result() for name, future in futures.items()}


class Wire:
    """Threads for calls that go on while the run does other work: a batch of writes on
    the wire while the next chunk of people is decided. Each call runs in a copy of the
    caller's context as it was when the call was handed over; the caller collects the
    answer from the returned future. `threads` bounds how many are under way at once."""

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(threads, 1),
                                        thread_name_prefix="syncer-wire")

    def __call__(self, call: Callable[[], T]) -> Future[T]:
        return self._pool.submit(contextvars.copy_context().run, call)

    def close(self) -> None:
        """Wait for every call handed over, then end the threads."""
        self._pool.shutdown(wait=True)


_ITEM, _END, _ERROR = "item", "end", "error"


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield `items` while the next `depth` of them are fetched in a thread: a pull stores
    one page while the CRM answers for the next. The source runs in its own thread only
    (from its first item to its close), in a copy of the caller's context; its error comes
    out here, at the item it failed on. Closing this generator (or leaving its loop)
    stops the source after the item it is fetching and closes it, so its own clean-up
    (a Bulk job closed) runs before this returns."""
    answers: Queue[tuple[str, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        outcome: tuple[str, object] = (_END, None)
        try:
            for item in items:
                answers.put((_ITEM, item))
                if stop.is_set():
                    break
        except BaseException as error:  # handed to the consumer, raised there
            outcome = (_ERROR, error)
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            except BaseException as error:
                outcome = outcome if outcome[0] == _ERROR else (_ERROR, error)
            answers.put(outcome)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                              name="syncer-read-ahead", daemon=True)
    thread.start()
    kind = _ITEM
    try:
        while True:
            kind, value = answers.get()
            if kind == _END:
                return
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while kind == _ITEM:  # what the source fetched meanwhile, then its end
            kind, _ = answers.get()
        thread.join()
