"""The decision, owner included, does not depend on the order records are pulled in nor on
how they are cut into pages or chunks: any permutation and chunking of the same world
gives identical CRM state (issue 18, item 6).

The world is pulled through the real clients from the sandboxes, then handed to the
pipeline shuffled and re-paged (connectors/sandbox/pull_order.py), the CRMs pulled in
either order, and the pipeline's own chunk size varied. Routing exercises every rule:
account match, territories (a team and a single rep), weighted round robin, daily caps
and the fallback owner.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sandbox.pull_order import Reordered
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.connector import Connector
from syncer.run import pipeline
from syncer.run.pipeline import run_sync
from syncer.store import routing as routing_store
from tests.conftest import (
    EXAMPLE_MODEL,
    NOW,
    running_sandboxes,
    sandbox_config_data,
    write_config,
)
from tests.test_kill_restart import state_of

State = dict[tuple[str, str, str], Any]
SIZE = 140
SEED = 23
RUNS = itertools.count()


def email(name: str) -> str:
    return f"{name}@syncer-sandbox.test"


ROUTING: dict[str, Any] = {
    "assign_at": "mql",
    "regions": {"EMEA": ["United Kingdom", "Germany", "France", "Netherlands", "Sweden",
                         "Spain"]},
    "territories": [
        {"id": "emea-enterprise", "match": {"region": ["EMEA"], "employees": {"min": 1000}},
         "rep": email("ingrid.holm")},
        {"id": "emea", "match": {"region": ["EMEA"]}, "team": "emea"}],
    "teams": [
        {"name": "emea", "reps": [{"email": email("keiko.arai"), "daily_cap": 4},
                                  {"email": email("rafael.duarte")}]},
        {"name": "global", "reps": [{"email": email("dana.whitfield"), "weight": 2},
                                    {"email": email("marco.bellini"), "daily_cap": 6},
                                    {"email": email("samuel.osei"), "weight": 2,
                                     "daily_cap": 9},
                                    {"email": email("olga.petrova")}]}],
    "default_team": "global",
    "fallback_owner": email("priya.raman"),
}


def model_path(directory: Path) -> Path:
    """The example model with everyone qualifying (so many people need an owner) and the
    routing above."""
    model: dict[str, Any] = yaml.safe_load(EXAMPLE_MODEL.read_text())
    model["routing"] = ROUTING
    model["qualification"] = {"mql_score": -1000}
    model.pop("lifecycle", None)
    path = directory / "model.yaml"
    if not path.exists():
        path.write_text(yaml.safe_dump(model))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, State]]:
    """The CRMs after one plain sync (pages as the APIs give them, config order)."""
    directory = tmp_path_factory.mktemp("order")
    with running_sandboxes(World(seed=SEED, size=SIZE, now=NOW)) as boxes:
        state = sync_world(directory, boxes, "reference", None)
    yield directory, state


def sync_world(directory: Path, boxes: Any, name: str,
               order: tuple[int, int, int, list[str]] | None,
               stop_after: int | None = None) -> State:
    with pytest.MonkeyPatch.context() as monkeypatch:
        data = sandbox_config_data(boxes, f"sqlite:///{directory / (name + '.db')}",
                                   monkeypatch)
        data["model"] = str(model_path(directory))
        loaded = write_config(directory / f"{name}.yaml", data)
        with Runtime(loaded) as runtime:
            connectors: dict[str, Connector] = dict(runtime.connectors)
            only = None
            if order is not None:
                seed, hubspot_page, salesforce_page, only = order
                pages = {"hubspot": hubspot_page, "salesforce": salesforce_page}
                connectors = {n: Reordered(c, seed + i, pages[n])
                              for i, (n, c) in enumerate(connectors.items())}
            if stop_after is not None:  # a first run stopped once it routed some people
                store = runtime.require_store()
                stopped = run_sync(loaded, store, connectors, runtime.model, NOW, only=only,
                                   should_stop=lambda: len(
                                       routing_store.assignment_rows(store)) >= stop_after)
                assert stopped.status == "stopped" and stopped.owners_assigned >= stop_after
            summary = run_sync(loaded, runtime.require_store(), connectors, runtime.model,
                               NOW, only=only)
    assert summary.status == "succeeded", summary.error
    assert summary.owners_assigned > 20
    return state_of(boxes)


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), hubspot_page=st.integers(1, 60),
       salesforce_page=st.integers(1, 60), crm_order=st.permutations(["hubspot", "salesforce"]),
       chunk=st.integers(7, 600))
def test_any_pull_order_and_chunking_gives_the_same_crm_state(
        reference: tuple[Path, State], seed: int, hubspot_page: int, salesforce_page: int,
        crm_order: list[str], chunk: int) -> None:
    directory, expected = reference
    name = f"run{next(RUNS)}"  # a fresh state each example, shrinking included
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(pipeline, "CHUNK", chunk)
        with running_sandboxes(World(seed=SEED, size=SIZE, now=NOW)) as boxes:
            got = sync_world(directory, boxes, name,
                             (seed, hubspot_page, salesforce_page, list(crm_order)))
    differing = {where: (expected.get(where), value) for where, value in got.items()
                 if expected.get(where) != value}
    assert not differing, list(differing.items())[:10]


def test_a_run_stopped_part_way_then_resumed_gives_the_same_crm_state(
        reference: tuple[Path, State], monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 10 and a stop after 15 people were routed: their decisions (owners
    included) are stored, but their writes were still pending (a push waits for a whole
    batch), so no CRM holds those owners when the next run starts. The next run must still
    route everyone else as one uninterrupted run would: the account index takes the owners
    kept from the stopped run, and the owners syncer wrote do not vote."""
    directory, expected = reference
    monkeypatch.setattr(pipeline, "CHUNK", 10)
    with running_sandboxes(World(seed=SEED, size=SIZE, now=NOW)) as boxes:
        got = sync_world(directory, boxes, f"run{next(RUNS)}", None, stop_after=15)
    differing = {where: (expected.get(where), value) for where, value in got.items()
                 if expected.get(where) != value}
    assert not differing, list(differing.items())[:10]
