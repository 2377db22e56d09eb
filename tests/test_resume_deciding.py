"""A full sync killed while deciding goes on after the last person whose writes were sent
(syncer/run/decided_so_far.py), instead of deciding everyone again.

The sync runs as a `syncer sync --once` child. Once its deciding mark is committed, the
sandbox holds the next HubSpot write it is asked for, and the child is killed there (its
main thread waits on that write, so nothing moves meanwhile). The restart decides only the
people after the mark, and those before it whose records the killed run wrote (their echo
is read back after a kill, as recovery needs); the CRMs end as after an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import OperationalError

from bench.page_log import PageLog
from syncer.cli.runtime import Runtime
from syncer.domain.config import load_config
from syncer.domain.connector import Connector
from syncer.run import push
from syncer.run.decided_so_far import DecidedSoFar
from syncer.run.pipeline import run_sync
from syncer.store import full_pulls, person_pages
from syncer.store.full_pulls import DecidedMark, FullPullMark
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from tests.conftest import NOW, Killed, as_left_at_schema, schema_of, sync_once
from tests.test_kill_restart import state_of
from tests.test_resume_full_sync import (
    Hold,
    configure,
    kill_when_held,
    logged_sandboxes,
    sync_process,
    world,
)


def decided_mark(state: Path) -> DecidedMark | None:
    """The deciding mark the child committed (None: none yet, or the file is busy)."""
    engine = create_engine(f"sqlite:///{state}")
    try:
        with engine.connect() as connection:
            return full_pulls.decided(connection, ["hubspot", "salesforce"])
    except OperationalError:  # not created yet, or locked by the writer this instant
        return None
    finally:
        engine.dispose()


def hubspot_write_once_decided(state: Path) -> Callable[[str, str], bool]:
    """A Hold rule: a HubSpot batch write asked for once the deciding mark is committed."""
    def rule(method: str, path: str) -> bool:
        return method == "POST" and path.endswith("/batch/update") \
            and decided_mark(state) is not None
    return rule


def last_run_people(config: Path) -> tuple[str, int]:
    with Runtime(load_config(config)) as runtime:
        run = runtime.require_store().runs(limit=1)[0]
        return run.status, int(str(run.stats["people"]))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[Any, Any], int]:
    """(every writeback field in both CRMs, people decided) after one uninterrupted full
    sync of world() by a `syncer sync --once` child: what each killed one must end as."""
    folder = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as monkeypatch, \
            logged_sandboxes(world(), PageLog()) as reference:
        config = configure(folder / "reference.yaml", reference, folder / "reference.db",
                           monkeypatch)
        assert sync_process(config).wait(timeout=600) == 0
        expected = state_of(reference)
        status, everyone = last_run_people(config)
    assert status == "succeeded" and everyone > 1500  # several chunks of 500
    return expected, everyone


@pytest.mark.slow
def test_a_full_sync_killed_while_deciding_resumes_after_its_mark(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        uninterrupted: tuple[dict[Any, Any], int]) -> None:
    expected, everyone = uninterrupted

    hold, state = Hold(), tmp_path / "killed.db"
    with logged_sandboxes(world(), PageLog(), hold) as boxes:
        config = configure(tmp_path / "killed.yaml", boxes, state, monkeypatch)
        hold.arm(hubspot_write_once_decided(state), 1)
        kill_when_held(config, hold)
        mark = decided_mark(state)
        assert sync_process(config).wait(timeout=600) == 0
        got = state_of(boxes)
        status, resumed = last_run_people(config)
        left = decided_mark(state)

    assert mark is not None and 0 < mark.people < everyone
    assert status == "succeeded"
    # the people after the mark, and of those before it only the ones whose records the
    # killed run wrote (read back after the kill): fewer than everyone again
    assert everyone - mark.people <= resumed < everyone
    assert got == expected
    assert left is None  # the full sync is over: nothing left to resume


@pytest.mark.slow
@pytest.mark.parametrize("later, resumes", [(timedelta(0), True),
                                            (timedelta(days=1), False)])
def test_a_stopped_deciding_goes_on_the_same_day_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, later: timedelta,
        resumes: bool) -> None:
    """A run stopped while deciding leaves its mark; the next run goes on from it on the
    same day, and decides everyone again on the next (a score decays daily)."""
    with logged_sandboxes(world(), PageLog()) as boxes:
        loaded = load_config(configure(tmp_path / "syncer.yaml", boxes,
                                       tmp_path / "state.db", monkeypatch))
        with Runtime(loaded) as runtime:
            store = runtime.require_store()
            first = run_sync(loaded, store, runtime.connectors, runtime.model, NOW,
                             should_stop=lambda: _mark_in(store) is not None)
            mark = _mark_in(store)
            everyone = person_pages.count(store, ["hubspot", "salesforce"])
            second = run_sync(loaded, store, runtime.connectors, runtime.model, NOW + later)
            left = _mark_in(store)
    assert first.status == "stopped" and mark is not None and 0 < mark.people < everyone
    assert second.status == "succeeded" and left is None
    if resumes:  # after the mark, and before it only whom this run's pull touched
        assert everyone - mark.people <= second.people < everyone
    else:
        assert second.people == everyone


def test_a_mark_of_another_model_version_is_not_resumed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nor one that not every connector of the run shares; a mark not resumed takes the
    account index saved with it away."""
    with logged_sandboxes(world(), PageLog()) as boxes:
        loaded = load_config(configure(tmp_path / "syncer.yaml", boxes,
                                       tmp_path / "state.db", monkeypatch))
        with Runtime(loaded) as runtime:
            store = runtime.require_store()
            connectors = ["hubspot", "salesforce"]
            with store.transaction() as tx:
                for name in connectors:
                    full_pulls.save(tx, name, FullPullMark(NOW, pulled=True))
                full_pulls.save_decided(tx, connectors, DecidedMark(
                    "person-5", NOW.date().toordinal(), "v1", 500, "killed"),
                    {"acme.example": "dana@example.com"})
            same = DecidedSoFar.of_full_sync(store, connectors, NOW, "v1", "now")
            other = DecidedSoFar.of_full_sync(store, connectors, NOW, "v2", "now")
            one_only = DecidedSoFar.of_full_sync(store, [*connectors[:1], "marketo"], NOW,
                                                 "v1", "now")
            assert same is not None and other is not None and one_only is None
            assert same.resume() == DecidedMark("person-5", NOW.date().toordinal(), "v1",
                                                500, "killed")
            assert same.accounts == {"acme.example": "dana@example.com"}
            assert other.resume() is None and other.saved is None
            with store.engine.connect() as connection:  # that deciding starts over
                assert full_pulls.decided_accounts(connection) == {}


def _mark_in(store: Store) -> DecidedMark | None:
    with store.engine.connect() as connection:
        return full_pulls.decided(connection, ["hubspot", "salesforce"])


def test_a_state_from_before_schema_23_gets_the_deciding_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    as_left_at_schema(url, 22, "DROP TABLE full_decides", "DROP TABLE full_decide_accounts")
    store = Store.open(url)
    try:
        with store.engine.connect() as connection:
            assert {"full_decides", "full_decide_accounts"} <= set(
                inspect(connection).get_table_names())
    finally:
        store.close()
    assert schema_of(url) == LATEST



@pytest.mark.slow
def test_a_write_before_the_mark_that_never_landed_is_made_by_the_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        uninterrupted: tuple[dict[Any, Any], int]) -> None:
    """A chunk counts as done once its writes are sent, so a batch can be under the mark
    and still never reach the CRM (the process dies with it on the wire). Recovery closes
    it as not written and notes its people, so the resumed deciding decides them again:
    the CRMs end as after an uninterrupted run."""
    expected, _ = uninterrupted

    state = tmp_path / "killed.db"
    sent: list[list[str]] = []
    original = push._write

    def lose_the_second_salesforce_batch(connector: Connector, updates: Any) -> Any:
        if connector.name == "salesforce":
            sent.append([u.record_id for u in updates])
            if len(sent) == 2:
                raise Killed  # the batch never reaches the CRM; the run dies at its answer
        return original(connector, updates)

    with logged_sandboxes(world(), PageLog()) as boxes:
        config = configure(tmp_path / "killed.yaml", boxes, state, monkeypatch)
        with monkeypatch.context() as patched:
            patched.setattr(push, "_write", lose_the_second_salesforce_batch)
            with pytest.raises(Killed):
                sync_once(load_config(config))
        mark = decided_mark(state)
        lost = set(sent[1])
        with Runtime(load_config(config)) as runtime:
            store = runtime.require_store()
            keys = {key for key, (people, _) in store.load_people(
                store.person_keys()).items() if any(r.record_id in lost for r in people)}
        assert mark is not None and keys and min(keys) <= mark.after_key  # some under it
        assert sync_once(load_config(config)).status == "succeeded"
        got = state_of(boxes)
    assert got == expected
