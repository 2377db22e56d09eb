"""A full sync killed part way goes on after its last committed page (issue 18 item 8).

The sync runs as a `syncer sync --once` child, killed with SIGKILL once the state shows
some pages committed; the restart finishes, the sandboxes' request logs show that no
committed page was requested again, and the CRMs end as after an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
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
from tests.waiting import wait_until

#: Small pages, so a few thousand people make many: HubSpot lists 50 contacts a page and
#: Salesforce's REST query 200 (the sandboxes' limits); Salesforce reads an object of more
#: than THRESHOLD records by Bulk API 2.0, in result sets of at most BULK_SET (the page
#: log caps the client's maxRecords, as Salesforce sizes sets itself).
THRESHOLD = 900
BULK_SET = 100


@contextmanager
def logged_sandboxes(world: World, log: PageLog) -> Iterator[Sandboxes]:
    boxes = Sandboxes(world, HubSpotSandbox(world, limits=HubSpotLimits(list_page_max=50)),
                      SalesforceSandbox(world, limits=SalesforceLimits(query_batch=200)))
    for box in (boxes.hubspot, boxes.salesforce):
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


def kill_when(config: Path, state: Path, connector: str, pages: int) -> FullPullMark:
    """Run a sync child until `connector`'s full pull has committed `pages` pages, SIGKILL
    it, and return the mark it left (what the state holds as committed)."""
    process = sync_process(config)

    def alive() -> None:
        assert process.poll() is None, f"the sync ended ({process.returncode}) first"

    def committed() -> bool:
        found = mark_of(state, connector)
        return found is not None and found.pages >= pages
    try:
        wait_until(committed, f"{pages} committed pages of {connector}", alive)
    finally:
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=120) == -signal.SIGKILL  # a hang guard, not a timing
    left = mark_of(state, connector)
    assert left is not None and not left.pulled
    return left


def world() -> World:
    return World(seed=9, size=2400, now=NOW)


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

    log, state = PageLog(bulk_set=BULK_SET), tmp_path / "killed.db"
    with logged_sandboxes(world(), log) as boxes:
        config = configure(tmp_path / "killed.yaml", boxes, state, monkeypatch)
        hubspot = kill_when(config, state, "hubspot", 5)  # part way through HubSpot
        first_run = log.pages()
        second_start = log.mark()
        salesforce = kill_when(config, state, "salesforce", 3)  # part way through Leads
        second_run = log.pages(second_start)
        third_start = log.mark()
        assert sync_process(config).wait(timeout=600) == 0
        third_run = log.pages(third_start)
        got = state_of(boxes)
        with Runtime(write_config(config, yaml.safe_load(config.read_text()))
                     ) as runtime:
            store = runtime.require_store()
            runs = [run.status for run in store.runs(limit=10)]
            with store.engine.connect() as connection:
                left = full_pulls.mark(connection, "hubspot"), \
                    full_pulls.mark(connection, "salesforce")

    committed_hubspot = [p for p in first_run if p.startswith("hubspot")][:hubspot.pages]
    committed_leads = [p for p in second_run if p.startswith("bulk")][:salesforce.pages]
    later = second_run + third_run
    assert not set(committed_hubspot) & set(later), "a committed HubSpot page was read again"
    assert not set(committed_leads) & set(third_run), "a committed Bulk result set was re-read"
    assert next(p for p in second_run if p.startswith("hubspot")) == \
        f"hubspot after={hubspot.position}"  # the restart went on from the mark
    assert next(p for p in third_run if p.startswith("bulk")).endswith(
        f"locator={(salesforce.position or '').rsplit(':', 1)[1]}")
    # Every page was read once in all, apart from pages in flight at a kill.
    assert len(first_run) + len(second_run) + len(third_run) <= len(every_page) + 2
    assert got == expected
    assert runs[0] == "succeeded"
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
