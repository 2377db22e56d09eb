"""Shared fixtures: sandbox CRMs as real servers on 127.0.0.1, configs pointing at them,
and state stores on SQLite (always) and PostgreSQL (when SYNCER_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, delete, select, text

from bench.sandbox_config import point_at_sandboxes
from connectors.sandbox import build_sandbox
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig, load_config
from syncer.domain.connector import Sandbox
from syncer.run.pipeline import RunSummary, run_sync
from syncer.store.intents import write_intents
from syncer.store.repository import Store
from syncer.store.tables import schema_version

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_MODEL = REPO / "config" / "model.example.yaml"
EXAMPLE_CONFIG = REPO / "config" / "syncer.example.yaml"
#: Fixed instant for the synthetic world and the syncs that read it.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
POSTGRES_ENV = "SYNCER_TEST_POSTGRES_URL"


@dataclass
class Sandboxes:
    world: World
    hubspot: Sandbox
    salesforce: Sandbox


@pytest.fixture
def world() -> World:
    return World(seed=7, size=160, now=NOW)


@contextmanager
def running_sandboxes(world: World, prepare: Callable[[Sandbox, Sandbox], None] | None = None
                      ) -> Iterator[Sandboxes]:
    """Both sandbox CRMs serving `world` on free ports until the block ends; `prepare`
    (hubspot, salesforce) is called before they start (to wrap their apps)."""
    hubspot = build_sandbox("hubspot", world)
    salesforce = build_sandbox("salesforce", world)
    if prepare is not None:
        prepare(hubspot, salesforce)
    hubspot.start()
    salesforce.start()
    try:
        yield Sandboxes(world, hubspot, salesforce)
    finally:
        hubspot.stop()
        salesforce.stop()


@pytest.fixture
def sandboxes(world: World) -> Iterator[Sandboxes]:
    with running_sandboxes(world) as running:
        yield running


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}, e.g. "
                    f"{POSTGRES_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test "
                    "(.ci/run sets it)")
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that runs on the PostgreSQL state, whether from state_url's own params or
    an indirect parametrization of it, is marked `postgres` (select with -m).

    The `slow` tests (10 to 45 s each) run first: pytest-xdist hands tests out in this
    order, so the long ones spread over the workers at the start instead of one of them
    finishing the suite alone with a 40-second test while the other idles."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("state_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty state database per test, on each supported backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    from sqlalchemy import create_engine, text

    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def sandbox_config_data(sandboxes: Sandboxes, state_url: str,
                        monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The example config, pointed at running sandboxes with env-var secrets."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["state"] = {"url": state_url}
    data["model"] = str(EXAMPLE_MODEL)
    secrets: dict[str, str] = {}
    point_at_sandboxes(data, {"hubspot": sandboxes.hubspot, "salesforce": sandboxes.salesforce},
                       prefix="TEST", env=secrets)
    for variable, value in secrets.items():
        monkeypatch.setenv(variable, value)  # undone after the test
    return data


def write_config(path: Path, data: dict[str, Any]) -> LoadedConfig:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


@pytest.fixture
def sandbox_config(sandboxes: Sandboxes, state_url: str, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    return write_config(tmp_path / "syncer.yaml",
                        sandbox_config_data(sandboxes, state_url, monkeypatch))


def sync_once(loaded: LoadedConfig, now: datetime = NOW, **options: Any) -> RunSummary:
    """One sync of `loaded` as of `now`, in-process, with the connectors, store and model
    the config names (a fresh Runtime each time, as a new process would have); `options`
    are run_sync's (only, full, dry_run, metrics, ...)."""
    with Runtime(loaded) as runtime:
        return run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model,
                        now, **options)


def trail_of(loaded: LoadedConfig) -> tuple[list[dict[str, Any]], int]:
    """The audit rows of `loaded`'s state, and how many write intents it holds open (a
    converged state holds none: every batch announced was closed with its outcomes, or
    by recovery)."""
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        with store.engine.connect() as connection:
            still_open = len(list(connection.execute(write_intents.select())))
        return store.audit_rows(), still_open


def as_left_at_schema(url: str, version: int, *undo: str) -> None:
    """Make a fresh state at `url` look like one an older syncer left at schema `version`:
    run the `undo` statements (dropping what later schemas added) and stamp the version,
    so that the next Store.open migrates it forward."""
    Store.open(url).close()
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in undo:
                connection.execute(text(statement))
            connection.execute(delete(schema_version))  # a fresh state is at LATEST
            connection.execute(schema_version.insert(),
                               [{"version": version, "applied_at": NOW}])
    finally:
        engine.dispose()


def schema_of(url: str) -> int:
    """The newest schema version the state at `url` is stamped with."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(max(connection.execute(select(schema_version.c.version)).scalars()))
    finally:
        engine.dispose()


class Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing after it in the process runs (a
    BaseException, so no `except Exception` of the run catches it)."""
