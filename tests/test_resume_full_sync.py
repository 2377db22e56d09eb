"""A full sync killed part way goes on after its last committed page (issue 18 item 8).

The sync runs as a `syncer sync --once` child, killed with SIGKILL while a chosen request
is held unanswered (every page before it is committed then): part way through HubSpot's
listing, after it but before the run's cursors, and part way through Salesforce's Bulk
result sets. The two pulls run side by side (syncer/run/lanes.py), so while one CRM's
request is held every request to the other is kept back too (a gate), whatever the
machine's speed. The last restart finishes; the sandboxes' request logs show that no
committed page was requested again, and the CRMs end as after an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from bench.page_log import PageLog
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.settings import HubSpotLimits, SalesforceLimits
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.store import full_pulls
from syncer.store.full_pulls import FullPullMark
from tests.conftest import NOW, Sandboxes, sandbox_config_data, write_config
from tests.test_kill_restart import state_of

#: Small pages, so a few thousand people make many: HubSpot lists 50 contacts a page and
#: Salesforce's REST query 200 (the sandboxes' limits); Salesforce reads an object of more
#: than THRESHOLD records by Bulk API 2.0, in result sets of at most BULK_SET (the page
#: log caps the client's maxRecords, as Salesforce sizes sets itself).
THRESHOLD = 900
BULK_SET = 100
#: how long the test waits for a state the child must reach before calling it missing: a
#: hang guard, not a timing (the state comes at once on any machine when the code works)
HANG_GUARD = 300.0


#: which request a Hold waits for: (method, path) -> whether it counts
Rule = Callable[[str, str], bool]


def list_page(method: str, path: str) -> bool:
    return method == "GET" and path == "/crm/v3/objects/contacts"


def bulk_set(method: str, path: str) -> bool:
    return method == "GET" and "/jobs/query/" in path and path.endswith("/results")


def events_page(method: str, path: str) -> bool:
    return method == "GET" and path.startswith("/events/v3/events")


class HoldPoint:
    """Where a sandbox holds one request (or answer) back: `reached` is set while it is
    held, and it goes on at release(). What is held is the subclass's to choose (`arm`,
    `_disarm`), under `_lock`. A `gate` (a CRM's name) keeps that CRM's requests back
    too until release(): the pulls run side by side, so while one CRM's request is held
    the other's pull stays where it is, whatever the machine's speed."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._gated: str | None = None

    def _rearm(self, gate: str | None) -> None:
        with self._lock:
            self._gated = gate
        self.reached.clear()
        self._released.clear()

    def _disarm(self) -> None:
        """Hold nothing more (called under `_lock`)."""

    def release(self) -> None:
        with self._lock:
            self._disarm()
            self._gated = None
        self._released.set()

    def _keep_back(self) -> None:
        """Keep a request to the gated CRM back until release()."""
        self._released.wait()

    def _hold(self) -> None:
        """Hold the current request here until release()."""
        self.reached.set()
        self._released.wait()


class Hold(HoldPoint):
    """Holds the `at`-th request matching the armed rule unanswered until release(): while
    it is held the sync child is alive and waiting, and has committed every page before
    it (a page is stored before the next is asked for), whatever the machine's speed.
    With a `gate` (a CRM's name), every request to that CRM waits for release() too."""

    def __init__(self) -> None:
        super().__init__()
        self._rule: Rule | None = None
        self._left = 0

    def arm(self, rule: Rule, at: int, *, gate: str | None = None) -> None:
        with self._lock:
            self._rule, self._left = rule, at
        self._rearm(gate)

    def _disarm(self) -> None:
        self._rule = None

    def attach(self, sandbox: object) -> None:
        app = sandbox._wsgi  # type: ignore[attr-defined]
        crm = "hubspot" if isinstance(sandbox, HubSpotSandbox) else "salesforce"

        def held(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with self._lock:
                gated = self._gated == crm
                hit = not gated and self._rule is not None and self._rule(
                    environ["REQUEST_METHOD"], environ["PATH_INFO"])
                if hit:
                    self._left -= 1
                stop = hit and self._left == 0
            if stop:
                self._hold()
            elif gated:
                self._keep_back()
            return app(environ, start_response)
        sandbox._wsgi = held  # type: ignore[attr-defined]


@contextmanager
def logged_sandboxes(world: World, log: PageLog, hold: Hold | None = None
                     ) -> Iterator[Sandboxes]:
    boxes = Sandboxes(world, HubSpotSandbox(world, limits=HubSpotLimits(list_page_max=50)),
                      SalesforceSandbox(world, limits=SalesforceLimits(query_batch=200)))
    for box in (boxes.hubspot, boxes.salesforce):
        if hold is not None:
            hold.attach(box)  # inside the log: a held request is logged as asked
        log.attach(box)
        box.start()
    try:
        yield boxes
    finally:
        boxes.hubspot.stop()
        boxes.salesforce.stop()


def configure(path: Path, boxes: Sandboxes, state: Path,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    data = sandbox_config_data(boxes, f"sqlite:///{state}", monkeypatch)
    for connector in data["connectors"]:
        # A held request is answered only after the kill: a client that gave up on it
        # (30 s by default) would ask again, and the test would count a page served that
        # it means to hold, on a machine slow enough to commit the page before it late.
        connector["timeout_seconds"] = 600
        if connector["kind"] == "salesforce":
            connector["bulk_query_threshold"] = THRESHOLD
    write_config(path, data)
    return path


def sync_process(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_STATE_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "syncer.cli", "sync", "--once", "--as-of", NOW.isoformat(),
         "--config", str(config)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def mark_of(state: Path, connector: str) -> FullPullMark | None:
    """The connector's full pull mark, as committed (None: none, or the file is busy)."""
    engine = create_engine(f"sqlite:///{state}")
    try:
        with engine.connect() as connection:
            return full_pulls.mark(connection, connector)
    except OperationalError:  # not created yet, or locked by the writer this instant
        return None
    finally:
        engine.dispose()


def kill_when_held(config: Path, trigger: HoldPoint,
                   settled: Callable[[], bool] = lambda: True) -> None:
    """Run a sync child until `trigger` (armed by the caller) holds one of its requests
    and the child has committed what comes before it (`settled`: a pull asks for the next
    page while it stores this one, syncer/run/lanes.py read_ahead, so the pages before the
    held one are committed soon after, not before), SIGKILL it there, then let the request
    go on (to nobody)."""
    process = sync_process(config)
    ended = threading.Thread(target=lambda: (process.wait(), trigger.reached.set()),
                             daemon=True)
    ended.start()
    try:
        trigger.reached.wait()  # the request, or the child's end: neither depends on speed
        assert process.poll() is None, f"the sync ended ({process.returncode}) first"
        wait_until(lambda: settled() or process.poll() is not None)
        assert process.poll() is None, f"the sync ended ({process.returncode}) first"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=120) == -signal.SIGKILL  # a hang guard, not a timing
    finally:
        trigger.release()
        ended.join(timeout=120)


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for something the child does (it commits a page, or ends): looked at every
    few milliseconds; the guard only stops a broken test from hanging forever."""
    guard = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < guard, "the awaited state never came"
        time.sleep(0.02)


def kill_at(config: Path, hold: Hold, rule: Rule, at: int, gate: str,
            settled: Callable[[], bool]) -> None:
    """Kill a sync child as it asks for the `at`-th request matching `rule`, once what
    comes before it is committed (`settled`), every request to the `gate` CRM kept back."""
    hold.arm(rule, at, gate=gate)
    kill_when_held(config, hold, settled)


def pages_committed(state: Path, connector: str, pages: int) -> Callable[[], bool]:
    """Whether the connector's full pull mark counts `pages` people pages."""
    def committed() -> bool:
        mark = mark_of(state, connector)
        return mark is not None and mark.pages == pages
    return committed


def listing_read(state: Path, connector: str) -> Callable[[], bool]:
    def read() -> bool:
        mark = mark_of(state, connector)
        return mark is not None and mark.pulled
    return read


def world() -> World:
    return World(seed=9, size=2400, now=NOW)


@pytest.mark.slow
def test_a_killed_full_sync_resumes_after_its_last_committed_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference_log = PageLog(bulk_set=BULK_SET)
    with logged_sandboxes(world(), reference_log) as reference:
        config = configure(tmp_path / "reference.yaml", reference,
                           tmp_path / "reference.db", monkeypatch)
        assert sync_process(config).wait(timeout=600) == 0
        expected = state_of(reference)
    every_page = reference_log.pages()
    assert sum(p.startswith("hubspot") for p in every_page) > 10
    assert sum(p.startswith("bulk") for p in every_page) > 5  # Leads by Bulk result sets
    assert any("FROM Contact" in p for p in every_page)  # Contacts by REST query

    log, hold, state = PageLog(bulk_set=BULK_SET), Hold(), tmp_path / "killed.db"
    runs: list[list[str]] = []
    marks: list[FullPullMark | None] = []
    with logged_sandboxes(world(), log, hold) as boxes:
        config = configure(tmp_path / "killed.yaml", boxes, state, monkeypatch)
        for connector, rule, at, gate, settled in (
                # 5 pages committed, the 6th asked
                ("hubspot", list_page, 6, "salesforce", pages_committed(state, "hubspot", 5)),
                # the listing read, no cursor set
                ("hubspot", events_page, 1, "salesforce", listing_read(state, "hubspot")),
                # 3 result sets of Leads committed
                ("salesforce", bulk_set, 4, "hubspot",
                 pages_committed(state, "salesforce", 3))):
            start = log.mark()
            kill_at(config, hold, rule, at, gate, settled)
            runs.append(log.pages(start))
            marks.append(mark_of(state, connector))
        start = log.mark()
        assert sync_process(config).wait(timeout=600) == 0
        runs.append(log.pages(start))
        got = state_of(boxes)
        with Runtime(write_config(config, yaml.safe_load(config.read_text()))
                     ) as runtime:
            store = runtime.require_store()
            status = store.runs(limit=1)[0].status
            with store.engine.connect() as connection:
                left = full_pulls.mark(connection, "hubspot"), \
                    full_pulls.mark(connection, "salesforce")

    paging, listed, leads = marks
    assert paging is not None and (paging.pages, paging.pulled) == (5, False)
    assert listed is not None and listed.pulled  # all of HubSpot read, the run not over
    assert leads is not None and (leads.pages, leads.pulled) == (3, False)
    committed_hubspot = [p for p in runs[0] if p.startswith("hubspot")][:5]
    committed_leads = [p for p in runs[2] if p.startswith("bulk")][:3]
    assert len(committed_hubspot) == 5 and len(committed_leads) == 3
    later = {p for run in runs[1:] for p in run}
    assert not set(committed_hubspot) & later, "a committed HubSpot page was read again"
    assert not set(committed_leads) & set(runs[3]), "a committed result set was read again"
    assert next(p for p in runs[1] if p.startswith("hubspot")) == \
        f"hubspot after={paging.position}"  # the restart went on from the mark
    assert not any(p.startswith("hubspot") for p in runs[2] + runs[3])  # read to the end
    assert next(p for p in runs[3] if p.startswith("bulk")).endswith(
        f"locator={(leads.position or '').rsplit(':', 1)[1]}")
    # Every page was read once in all, apart from the ones asked for as a kill came.
    assert sum(len(run) for run in runs) <= len(every_page) + 2
    assert got == expected
    assert status == "succeeded"
    assert left == (None, None)  # the full sync is over: nothing left to resume


@pytest.mark.parametrize("kind, threshold", [("hubspot", None), ("salesforce", 10_000)])
def test_full_pages_from_a_position_go_on_with_the_next_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
        threshold: int | None) -> None:
    log = PageLog(bulk_set=BULK_SET)
    with logged_sandboxes(world(), log) as boxes:
        config = configure(tmp_path / "syncer.yaml", boxes, tmp_path / "state.db",
                           monkeypatch)
        data = yaml.safe_load(config.read_text())
        for connector in data["connectors"]:
            if threshold is not None and connector["kind"] == "salesforce":
                connector["bulk_query_threshold"] = threshold
        with Runtime(write_config(config, data)) as runtime:
            connector: Any = runtime.connectors[kind]
            pages = [([p.record_id for p in page], position)
                     for page, position in connector.full_pages(None)]
            assert len(pages) > 3 and pages[-1][1] is None
            assert all(position is not None for _, position in pages[:-1])
            for cut in (1, len(pages) // 2, len(pages) - 1):
                rest = [[p.record_id for p in page]
                        for page, _ in connector.full_pages(pages[cut - 1][1])]
                assert [ids for ids, _ in pages[cut:]] == rest
