"""A tenant's name and where its state lives within a shared state URL.

Apart from syncer/domain/tenants.py (which loads tenants' config files) because the config
itself needs it to resolve its state URL: this module imports no config.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from syncer.domain.config_base import ConfigError

#: what a tenant may be called: it becomes a schema, a file name and part of a lock key.
TENANT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class TenantError(ConfigError):
    """A tenant that does not exist or is badly named (exit 2, like any bad config)."""


def check_name(name: str) -> str:
    if not TENANT_NAME.match(name):
        raise TenantError([f"tenant {name!r}: a tenant name is lower-case letters, digits "
                           "and _, starting with a letter, at most 40 characters. Fix: "
                           "rename the tenant's file (tenants/<name>.yaml)"])
    return name


def tenant_state_url(url: str, tenant: str | None) -> str:
    """The state URL of `tenant` within the shared `url` (see the module docstring);
    `url` itself when there is no tenant."""
    if tenant is None:
        return url.replace("{tenant}", "default")
    check_name(tenant)
    if "{tenant}" in url:
        return url.replace("{tenant}", tenant)
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/").endswith(":"):
            return url
        head, _, tail = url.rpartition("/")
        stem, dot, suffix = tail.partition(".")
        return f"{head}/{stem}.{tenant}{dot}{suffix}" if dot else f"{head}/{tail}.{tenant}"
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema_of(tenant)}')}"


def schema_of(tenant: str) -> str:
    """The PostgreSQL schema holding a tenant's tables."""
    return f"tenant_{check_name(tenant)}"
