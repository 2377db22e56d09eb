"""The processor of inbound events: pending events in, one focused run out.

Woken by the webhook routes (and every `poll_seconds` regardless, which is how events left
pending by a killed daemon or a run that found the lock held are picked up), it takes every
pending event at once and re-qualifies their people in one focused run
(syncer/run/focused.py): a burst of events about a few people costs a few runs, not one per
event. The run takes the same run lock as a scheduled sync, so the two never overlap; if a
scheduled run holds it, the events stay pending and are tried again at the next poll.
Events are marked done only after the run that consumed them finished (`succeeded`, or
`partial`: a record's failed write is a dead letter with its own retries).
"""

from __future__ import annotations

import threading
from contextlib import suppress
from datetime import datetime, timezone

import structlog
from sqlalchemy.exc import SQLAlchemyError

from syncer.domain.inbound import HandRaise, HandRaiseInvalid
from syncer.observe.logs import redact_text
from syncer.observe.metrics import SyncMetrics
from syncer.run.focused import Focus
from syncer.run.pipeline import RunSummary, run_sync
from syncer.run.runtime import SyncRuntime
from syncer.store import inbound_events
from syncer.store.inbound_events import StoredEvent

log = structlog.get_logger(__name__)

#: run statuses after which the events a run took are consumed
CONSUMED = frozenset({"succeeded", "partial"})
#: the most events one focused run takes (the rest wait for the next)
BATCH = 5000
#: the longest wait between two attempts while runs keep failing, in seconds
MAX_BACKOFF = 300.0


def focus_of(events: list[StoredEvent]) -> tuple[Focus, list[int]]:
    """The Focus of these events, and the ids of events that cannot be used (a stored
    hand-raise that no longer parses, e.g. an activity type a newer syncer dropped)."""
    focus = Focus()
    unusable: list[int] = []
    for event in events:
        if event.kind == "record":
            focus.add_record(event.connector, event.record_id)
            continue
        try:
            focus.add_hand_raise(event.connector, HandRaise.from_json(event.payload))
        except HandRaiseInvalid:
            unusable.append(event.id)
    return focus, unusable


class InboundProcessor:
    """Runs in a thread of `syncer run` until `stop_event` is set."""

    def __init__(self, runtime: SyncRuntime, metrics: SyncMetrics,
                 stop_event: threading.Event, poll_seconds: float) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.stop_event = stop_event
        self.poll_seconds = poll_seconds
        self.woken = threading.Event()
        self.thread = threading.Thread(target=self.run_forever, name="syncer-inbound",
                                       daemon=True)

    def wake(self) -> None:
        self.woken.set()

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float = 60) -> None:
        self.woken.set()
        self.thread.join(timeout=timeout)

    def run_forever(self) -> None:
        """Process, then sleep until woken or `poll_seconds` pass; after runs that did not
        consume their events (a CRM down, the state unreachable) the sleep doubles, up to
        MAX_BACKOFF, so an outage is not hammered. The events wait, never dropped: the
        scheduled syncs read the same changes meanwhile."""
        failures = 0
        while not self.stop_event.is_set():
            try:
                summary = self.process_pending()
                ok = summary is None or summary.status in CONSUMED \
                    or summary.status == "skipped"
            except Exception as failure:  # a failed run must not end the processor
                log.error("inbound.failed", error=type(failure).__name__,
                          message=redact_text(str(failure))[:500])
                ok = False
            failures = 0 if ok else failures + 1
            wait = min(self.poll_seconds * 2 ** failures, MAX_BACKOFF)
            if failures == 0:
                self.woken.wait(timeout=wait)
            else:  # not woken early: new events wait for the outage like the others
                self.stop_event.wait(timeout=wait)
            self.woken.clear()

    def process_pending(self) -> RunSummary | None:
        """One focused run over every pending event; None when there was none."""
        store = self.runtime.require_store()
        try:
            events = inbound_events.pending(store, BATCH)
        except SQLAlchemyError as error:
            log.warning("inbound.state_unreachable", error=type(error).__name__)
            return None
        if not events:
            return None
        focus, unusable = focus_of(events)
        now = datetime.now(timezone.utc)
        if unusable:
            inbound_events.finish(store, unusable, None, now, status="invalid")
        taken = [e.id for e in events if e.id not in set(unusable)]
        if not focus:
            return None
        try:
            model = self.runtime.refresh_model().model
            summary = run_sync(self.runtime.loaded, store, self.runtime.connectors, model,
                               now, focus=focus, metrics=self.metrics,
                               should_stop=self.stop_event.is_set)
        except Exception:
            with suppress(SQLAlchemyError):  # the state may be what failed
                inbound_events.note_attempt(store, taken)
            raise
        if summary.status in CONSUMED:
            inbound_events.finish(store, taken, summary.run_id, datetime.now(timezone.utc))
        elif summary.status != "skipped":
            inbound_events.note_attempt(store, taken)
        log.info("inbound.run", events=len(taken), people=summary.people,
                 status=summary.status, run_id=summary.run_id)
        return summary
