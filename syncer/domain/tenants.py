"""Tenants: several portals and orgs (an agency's clients, a group's companies) served by one
deployment, each with its own config file, secrets and state.

The layout is a directory of config files, one per tenant: `tenants/acme.yaml` is tenant
`acme` (the directory is `--tenants DIR`, else $SYNCER_TENANTS, else ./tenants). Each file is
an ordinary syncer.yaml: its own connectors, model, schedule and secrets (name each
tenant's own environment variables or secret files in its `credentials`), so one tenant's
token is never read while another's sync runs.

State: all tenants may share one state URL. Each tenant's tables live apart:
- on PostgreSQL, in a schema of their own, `tenant_<name>` (created on first use), chosen
  through the connection's search_path. Why a schema per tenant rather than the tenant in
  every key: every query, index, migration and the audit hash chain stay exactly what one
  tenant has always used (nothing can forget a `WHERE tenant = ...` and leak a row across
  tenants), a tenant is removed with one `DROP SCHEMA`, and an export or restore of one
  tenant is a `pg_dump --schema`. The cost, a catalogue per tenant, is small at the scale
  of hundreds of tenants.
- on SQLite, in a file of their own beside the configured one (`state.db` -> `state.acme.db`),
  or wherever `{tenant}` in the URL puts it.
Run locks, the run spool and job keys carry the tenant too, so two tenants never share a
lock, and the procrastinate jobs of all tenants share one queue in the `public` schema.

A file may say `tenant: acme` itself; then `--config tenants/acme.yaml` and `--tenant acme`
open the same state. A file in a tenants directory whose `tenant:` disagrees with its name
is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from syncer.domain.config import LoadedConfig, load_config
from syncer.domain.tenant_state import TenantError, check_name

TENANTS_ENV = "SYNCER_TENANTS"


def tenants_dir(arg: str | os.PathLike[str] | None = None) -> Path:
    """--tenants, else $SYNCER_TENANTS, else ./tenants."""
    return Path(arg or os.environ.get(TENANTS_ENV) or "tenants")


def tenant_names(directory: Path) -> list[str]:
    """The tenants of a directory, sorted: every `<name>.yaml` in it."""
    if not directory.is_dir():
        raise TenantError([f"{directory}: no tenants directory there. Fix: pass --tenants "
                           f"DIR or set {TENANTS_ENV} to the folder holding one "
                           "<tenant>.yaml per tenant"])
    names = sorted(path.stem for path in directory.glob("*.yaml"))
    for name in names:
        check_name(name)
    return names


def load_tenant(directory: Path, name: str) -> LoadedConfig:
    """The config of tenant `name`: `<directory>/<name>.yaml`, with its tenant set."""
    check_name(name)
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(tenant_names(directory)) if directory.is_dir() else "none"
        raise TenantError([f"tenant {name}: no file {path}. Fix: create it, or use one of "
                           f"the tenants there ({known})"])
    loaded = load_config(path)
    declared = loaded.config.tenant
    if declared is not None and declared != name:
        raise TenantError([f"{path}: tenant: {declared} disagrees with the file name. Fix: "
                           f"rename the file to {declared}.yaml or set tenant: {name}"])
    loaded.tenant = name
    return loaded
