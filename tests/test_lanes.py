"""A run works while it waits (syncer/run/lanes.py): the connectors' pulls run side by side,
and a batch of writes is on the wire while the next chunk of people is decided.

Every test here waits for events, never for time: a lane that should run beside another
waits for that other's signal (bounded by a hang guard only, so a broken overlap fails
instead of hanging), and the sandboxes hold a request until the sync has shown what it does
meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, closing
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.sandbox.world import World
from syncer.domain.config import LoadedConfig
from syncer.run import pipeline
from syncer.run.chunk import Sync
from syncer.run.lanes import Wire, read_ahead, run_lanes
from syncer.run.push import Sending, Writer
from syncer.store import intents
from syncer.store import tables as t
from syncer.store.repository import Store
from tests.conftest import (
    NOW,
    Sandboxes,
    running_sandboxes,
    sandbox_config_data,
    sync_once,
    write_config,
)

#: how long a lane waits for a signal that an overlap must give before calling it missing;
#: a hang guard, not a timing: a working overlap gives it at once on any machine
HANG_GUARD = 120.0

CALLER: ContextVar[str] = ContextVar("caller", default="none")


def test_lanes_run_side_by_side_in_the_callers_context() -> None:
    """Each lane waits for the other's signal: they can only both finish side by side."""
    first, second = threading.Event(), threading.Event()

    def lane(mine: threading.Event, theirs: threading.Event) -> Any:
        def run(_aborted: threading.Event) -> tuple[bool, str]:
            mine.set()
            return theirs.wait(HANG_GUARD), CALLER.get()
        return run

    CALLER.set("the run")
    got = run_lanes({"a": lane(first, second), "b": lane(second, first)})
    assert got == {"a": (True, "the run"), "b": (True, "the run")}


def test_a_failing_lane_stops_the_others_and_its_error_is_raised() -> None:
    stopped = threading.Event()

    def fails(_aborted: threading.Event) -> None:
        raise ValueError("hubspot gave up")

    def waits_for_the_stop(aborted: threading.Event) -> None:
        if aborted.wait(HANG_GUARD):
            stopped.set()

    with pytest.raises(ValueError, match="hubspot gave up"):
        run_lanes({"a": waits_for_the_stop, "b": fails})
    assert stopped.is_set()  # told to stop, and waited for before the error came out


def test_one_lane_runs_in_the_calling_thread() -> None:
    got = run_lanes({"only": lambda _aborted: threading.current_thread()})
    assert got == {"only": threading.current_thread()}


def test_the_wire_carries_the_callers_context_and_waits_at_close() -> None:
    wire = Wire(2)
    CALLER.set("handed over")
    answer = wire(lambda: (CALLER.get(), threading.current_thread().name))
    wire.close()
    caller, thread = answer.result()
    assert caller == "handed over" and thread.startswith("syncer-wire")


def test_read_ahead_asks_for_the_next_item_while_this_one_is_used() -> None:
    asked: list[int] = []
    second_asked = threading.Event()

    def source() -> Iterator[int]:
        for n in (1, 2, 3):
            asked.append(n)
            if n == 2:
                second_asked.set()
            yield n

    got = []
    for item in read_ahead(source()):
        if item == 1:  # the source is asked for 2 while 1 is still being used
            assert second_asked.wait(HANG_GUARD)
        got.append(item)
    assert got == asked == [1, 2, 3]


def test_read_ahead_raises_the_sources_error_at_its_place() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise ConnectionError("page 2 failed")

    got = []
    with pytest.raises(ConnectionError, match="page 2 failed"):
        for item in read_ahead(source()):
            got.append(item)
    assert got == [1]


def test_leaving_a_read_ahead_closes_its_source_first() -> None:
    closed = threading.Event()
    threads: set[str] = set()

    def source() -> Iterator[int]:
        try:
            for n in range(1000):
                threads.add(threading.current_thread().name)
                yield n
        finally:  # a Bulk job closed, say
            threads.add(threading.current_thread().name)
            closed.set()

    with closing(read_ahead(source())) as items:
        assert next(items) == 0
    assert closed.is_set()  # before close() returned
    assert threads == {"syncer-read-ahead"}  # the source ran in its thread only


# -- in a real run, against the sandboxes ------------------------------------------------

class FirstWrite:
    """Holds the first HubSpot batch update at the sandbox until the sync shows it went on
    meanwhile: decided another chunk (`chunks`), or saw the stop asked for (`stop_seen`);
    or until the hang guard runs out. `overlapped` says which."""

    def __init__(self, chunks: ChunkCount) -> None:
        self.chunks = chunks
        self.arrived = threading.Event()
        self.stop_seen: threading.Event | None = None
        self.sent = threading.Event()
        self.overlapped: bool | None = None

    def stop_once_sent(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Ask the run to stop as soon as its first batch is handed over (`should_stop`),
        and hold that batch at the sandbox until the run has seen the stop."""
        self.stop_seen, self.sent = threading.Event(), threading.Event()
        send = Writer.send

        def sent(writer: Writer, *args: Any, **kwargs: Any) -> Sending:
            sending = send(writer, *args, **kwargs)
            self.sent.set()
            return sending
        monkeypatch.setattr(Writer, "send", sent)

    def should_stop(self) -> bool:
        if not self.sent.is_set():
            return False
        assert self.stop_seen is not None
        self.stop_seen.set()
        return True

    def _went_on(self) -> bool:
        if self.stop_seen is not None:
            return self.stop_seen.wait(HANG_GUARD)
        return self.chunks.wait_beyond(self.chunks.done)

    def attach(self, sandbox: Any) -> None:
        app = sandbox._wsgi

        def held(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            first = False
            if environ["PATH_INFO"].endswith("/batch/update") and not self.arrived.is_set():
                self.arrived.set()
                first = True
            if first:  # the sync must go on while this batch is out
                self.overlapped = self._went_on()
            answer: Iterable[bytes] = app(environ, start_response)
            return answer
        sandbox._wsgi = held


class ChunkCount:
    """How many chunks of people the run has decided, as they happen (a chunk's writes
    are sent after it is decided, at the end of its processing)."""

    def __init__(self) -> None:
        self.done = 0
        self._changed = threading.Condition()

    def count(self, monkeypatch: pytest.MonkeyPatch) -> None:
        decide = Sync._decide_chunk

        def counted(sync: Sync, keys: Any) -> Any:
            decided = decide(sync, keys)
            with self._changed:
                self.done += 1
                self._changed.notify_all()
            return decided
        monkeypatch.setattr(Sync, "_decide_chunk", counted)

    def wait_beyond(self, seen: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.done > seen, timeout=HANG_GUARD)


def held_sandboxes(world: World, hold: FirstWrite) -> AbstractContextManager[Sandboxes]:
    return running_sandboxes(world, lambda hubspot, _salesforce: hold.attach(hubspot))


def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 25 people, so a world of 300 makes a few more after the first full batch."""
    monkeypatch.setattr(pipeline, "CHUNK", 25)


def config_for(boxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> LoadedConfig:
    data = sandbox_config_data(boxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    return write_config(tmp_path / "syncer.yaml", data)


def test_the_next_chunk_is_decided_while_a_batch_is_on_the_wire(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = ChunkCount()
    chunks.count(monkeypatch)
    small_chunks(monkeypatch)
    hold = FirstWrite(chunks)
    with held_sandboxes(World(seed=7, size=300, now=NOW), hold) as boxes:
        loaded = config_for(boxes, tmp_path, monkeypatch)
        summary = sync_once(loaded)
        written = [r for r in boxes.hubspot.records() if r.get("syncer_score")]
    assert hold.arrived.is_set()
    assert hold.overlapped is True, "no chunk was decided while the first batch was out"
    assert summary.status == "succeeded"
    assert summary.records_written["hubspot"] == len(written) > 100  # the held batch too


def test_a_run_stopped_with_a_batch_on_the_wire_records_its_outcomes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stop comes while the first batch is out; the run still records what that batch
    did, so no intent of the run is left open for recovery."""
    chunks = ChunkCount()
    chunks.count(monkeypatch)
    small_chunks(monkeypatch)
    hold = FirstWrite(chunks)
    hold.stop_once_sent(monkeypatch)
    with held_sandboxes(World(seed=7, size=300, now=NOW), hold) as boxes:
        loaded = config_for(boxes, tmp_path, monkeypatch)
        summary = sync_once(loaded, should_stop=hold.should_stop)
        stamped = {r["id"] for r in boxes.hubspot.records() if r.get("syncer_score")}
    assert hold.overlapped is True, "the stop was not seen while the first batch was out"
    assert summary.status == "stopped"
    assert summary.records_written["hubspot"] == len(stamped) == 100  # the one batch
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.engine.connect() as connection:
            assert intents.open_intents(connection, summary.run_id, "hubspot") == []
            written = set(connection.execute(
                select(t.written.c.record_id).where(
                    t.written.c.connector == "hubspot")).scalars())
    finally:
        store.close()
    assert written == stamped


def test_the_connectors_are_pulled_side_by_side(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """HubSpot's first contacts page is held until Salesforce is asked for something: only
    a pull of Salesforce beside HubSpot's can answer it."""
    salesforce_asked = threading.Event()
    side_by_side: list[bool] = []

    def wrap(hubspot: Any, salesforce: Any) -> None:
        hubspot_app, salesforce_app = hubspot._wsgi, salesforce._wsgi

        def hubspot_held(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ["PATH_INFO"] == "/crm/v3/objects/contacts" and not side_by_side:
                side_by_side.append(salesforce_asked.wait(HANG_GUARD))
            answer: Iterable[bytes] = hubspot_app(environ, start_response)
            return answer

        def salesforce_seen(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if "/query" in environ["PATH_INFO"] or "/jobs/" in environ["PATH_INFO"]:
                salesforce_asked.set()
            answer: Iterable[bytes] = salesforce_app(environ, start_response)
            return answer
        hubspot._wsgi, salesforce._wsgi = hubspot_held, salesforce_seen

    with running_sandboxes(World(seed=7, size=120, now=NOW), wrap) as boxes:
        summary = sync_once(config_for(boxes, tmp_path, monkeypatch))
    assert side_by_side == [True], "Salesforce was not pulled while HubSpot's pull waited"
    assert summary.status == "succeeded"
    assert summary.records_pulled["hubspot"] > 0 and summary.records_pulled["salesforce"] > 0
