"""Tenants: one config file each, a state of their own inside one shared state URL, and
every command reaching a tenant with --tenant."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import text

from syncer.domain.config_base import ConfigError
from syncer.domain.tenant_state import TenantError, tenant_state_url
from syncer.domain.tenants import load_tenant, tenant_names
from syncer.store.repository import Store
from tests.conftest import (
    EXAMPLE_CONFIG,
    EXAMPLE_MODEL,
    NOW,
    Sandboxes,
    _postgres_url,
    sandbox_config_data,
)
from tests.lock_helpers import GatedProxy, LineWatch, child_env, run_syncer, syncer_command
from tests.test_run_lock import GATE, created_twice, salesforce_emails
from tests.worker_helpers import scratch_database


def test_each_tenant_has_its_own_state_within_one_url() -> None:
    assert tenant_state_url("sqlite:////srv/state.db", "acme") == "sqlite:////srv/state.acme.db"
    assert tenant_state_url("sqlite:////srv/{tenant}/s.db", "acme") == "sqlite:////srv/acme/s.db"
    assert tenant_state_url("sqlite:////srv/state.db", None) == "sqlite:////srv/state.db"
    assert tenant_state_url("postgresql+psycopg://u@h/db", "acme") == \
        "postgresql+psycopg://u@h/db?options=-csearch_path%3Dtenant_acme"
    assert tenant_state_url("postgresql+psycopg://u@h/db?sslmode=require", "b") == \
        "postgresql+psycopg://u@h/db?sslmode=require&options=-csearch_path%3Dtenant_b"


def write(directory: Path, name: str, data: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def minimal(**extra: object) -> dict[str, object]:
    """The example config (built-in sandboxes), with `extra` settings."""
    data: dict[str, object] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    return {**data, "model": str(EXAMPLE_MODEL), **extra}


def test_bad_tenants_are_refused_with_the_fix(tmp_path: Path) -> None:
    directory = tmp_path / "tenants"
    write(directory, "acme", minimal())
    write(directory, "globex", minimal(tenant="initech"))
    assert tenant_names(directory) == ["acme", "globex"]
    assert load_tenant(directory, "acme").tenant == "acme"
    with pytest.raises(TenantError) as missing:
        load_tenant(directory, "nope")
    assert "no file" in str(missing.value.problems) and "acme, globex" in str(
        missing.value.problems)
    with pytest.raises(TenantError, match="disagrees") as mismatch:
        load_tenant(directory, "globex")
    assert isinstance(mismatch.value, ConfigError)
    with pytest.raises(TenantError, match="lower-case"):
        load_tenant(directory, "Bad-Name")
    with pytest.raises(TenantError, match="no tenants directory"):
        tenant_names(tmp_path / "elsewhere")


def test_two_tenants_on_one_postgresql_database_never_see_each_other(tmp_path: Path) -> None:
    with scratch_database(_postgres_url()) as url:
        directory = tmp_path / "tenants"
        for name in ("acme", "globex"):
            write(directory, name, minimal(state={"url": url}))
        stores = {name: Store.open(load_tenant(directory, name).state_url)
                  for name in ("acme", "globex")}
        try:
            stores["acme"].start_run("r-acme", ["hubspot"], NOW, False)
            assert [r.run_id for r in stores["acme"].runs()] == ["r-acme"]
            assert stores["globex"].runs() == []
            with stores["acme"].engine.connect() as connection:
                schemas = set(connection.execute(text(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%'")).scalars())
                public = connection.execute(text(
                    "SELECT to_regclass('public.runs')")).scalar()
            assert schemas == {"tenant_acme", "tenant_globex"}
            assert public is None  # nothing landed in the shared schema
        finally:
            for store in stores.values():
                store.close()


def test_commands_take_a_tenant_and_refuse_it_beside_a_config(tmp_path: Path) -> None:
    directory = tmp_path / "tenants"
    write(directory, "acme", minimal(state={"url": f"sqlite:///{tmp_path / 'state.db'}"}))
    store = Store.open(load_tenant(directory, "acme").state_url)
    store.start_run("r-acme", ["hubspot"], NOW, False)
    store.close()
    assert (tmp_path / "state.acme.db").exists() and not (tmp_path / "state.db").exists()
    env = child_env(tmp_path / "spool.jsonl")
    listed = run_syncer(["runs", "--tenant", "acme", "--tenants", str(directory)], env, tmp_path)
    assert listed.returncode == 0 and "r-acme" in listed.stdout
    both = run_syncer(["runs", "--tenant", "acme", "--config", "x.yaml"], env, tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr
    metrics = run_syncer(["metrics", "--tenant", "acme", "--tenants", str(directory)], env,
                         tmp_path)
    assert metrics.returncode == 0
    assert 'syncer_runs_total{connector="hubspot",status="failed"} 0.0' in metrics.stdout


@pytest.mark.slow
def test_two_syncs_of_one_tenant_at_once_one_runs_one_is_skipped(
        tmp_path: Path, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same tenant from two machines' copies of its file (here: one pointed through a
    gate that holds its first HubSpot call): one run, one skip, nobody created twice."""
    with scratch_database(_postgres_url()) as url:
        monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
        data = sandbox_config_data(sandboxes, url, monkeypatch)
        for connector in data["connectors"]:
            if connector["name"] in GATE:
                connector["create"] = GATE[connector["name"]]
        port = urlsplit(sandboxes.hubspot.base_url).port
        assert port is not None
        gate = GatedProxy(port)
        gated = copy.deepcopy(data)
        for connector in gated["connectors"]:
            if connector["kind"] == "hubspot":
                scheme = urlsplit(connector["base_url"]).scheme
                connector["base_url"] = f"{scheme}://127.0.0.1:{gate.port}"
        write(tmp_path / "a", "solo", gated)
        write(tmp_path / "b", "solo", data)
        env = child_env(tmp_path / "spool.jsonl")
        before = salesforce_emails(sandboxes)
        first = subprocess.Popen(
            syncer_command("sync", "--once", "--as-of", NOW.isoformat(), "--tenant", "solo",
                           "--tenants", str(tmp_path / "a")),
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert first.stdout is not None and first.stderr is not None
        out = LineWatch(first.stdout, "\n")
        locked = LineWatch(first.stderr, "sync.locked")
        try:
            assert locked.seen.wait(timeout=120), locked.join()
            second = run_syncer(["sync", "--once", "--as-of", NOW.isoformat(), "--tenant",
                                 "solo", "--tenants", str(tmp_path / "b")], env, tmp_path)
        finally:
            gate.open()
            assert first.wait(timeout=240) == 0, locked.join()
            gate.close()
        out.join()
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip().endswith("; skipped")
        store = Store.open(load_tenant(tmp_path / "b", "solo").state_url)
        try:
            assert sorted(r.status for r in store.runs()) == ["skipped", "succeeded"]
        finally:
            store.close()
        after = salesforce_emails(sandboxes)
        assert sum((after - before).values()) > 0
        assert created_twice(before, after) == {}
