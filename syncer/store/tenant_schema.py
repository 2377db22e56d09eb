"""The PostgreSQL schema a state lives in, created before anything is migrated into it.

A tenant's state (syncer/domain/tenants.py), like each test's, is a schema chosen by the
connection's search_path. PostgreSQL does not create a schema named there: if it is
missing, tables would silently land in the next schema of the path (`public`), mixing
tenants. So the store creates the first schema of the search_path before migrating, under
a transaction advisory lock (two workers starting a new tenant at once would otherwise both
try, and one would fail on the catalogue's unique index).
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from syncer.store.locks import lock_key

#: schemas that are PostgreSQL's own or always there: never created by syncer
_BUILT_IN = {"public", "$user", "pg_catalog", "information_schema"}


def first_schema(search_path: str) -> str | None:
    """The first entry of a search_path setting, unquoted (`"$user", public` -> `$user`)."""
    first = search_path.split(",")[0].strip()
    if first.startswith('"') and first.endswith('"'):
        first = first[1:-1].replace('""', '"')
    return first or None


def ensure_schema(engine: Engine) -> None:
    """Create the first schema of the search_path if it is missing (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        schema = first_schema(connection.execute(text("SHOW search_path")).scalar_one())
        if schema is None or schema in _BUILT_IN:
            return
        exists = connection.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first()
        if exists:
            return
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                           {"k": lock_key("syncer", "create-schema")})
        quoted = '"' + schema.replace('"', '""') + '"'
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
