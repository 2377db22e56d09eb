"""Helpers every command shares: finding the config and the state database.

Imported when the parser is built, so it imports nothing heavy at module level (the
config schema, SQLAlchemy and the store are imported by the functions that use them).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from syncer.domain.failures import BadInput

if TYPE_CHECKING:
    from syncer.domain.config import LoadedConfig
    from syncer.store.repository import Store


def config_path(arg: str | None) -> Path:
    """--config, else $SYNCER_CONFIG, else ./syncer.yaml, else the shipped example."""
    from syncer.domain.config import EXAMPLE_CONFIG

    for candidate in (arg, os.environ.get("SYNCER_CONFIG"), "syncer.yaml"):
        if candidate and (arg or Path(candidate).exists()):
            return Path(candidate)
    return EXAMPLE_CONFIG


def state_url(args: argparse.Namespace) -> str:
    """--state if given, else the state URL of the config."""
    if getattr(args, "state", None):
        return str(args.state)
    return load_args_config(args).state_url


def read_state(args: argparse.Namespace) -> Store:
    """The existing state of a command that only reads it (--state, else the config's),
    opened read-only and never migrated (syncer/store/read_only.py). A SQLite file that is
    not there is refused (NoState: one line, exit 2), never created: a mistyped path must
    not look like an empty history."""
    from syncer.store.read_only import open_read_only

    return open_read_only(state_url(args))


def open_state(args: argparse.Namespace) -> Store:
    """The existing state of a command that reads it and may write to it (`syncer runs`
    writes the runs kept in the spool): refused like `read_state` when it is not there;
    migrated like any store syncer opens for writing."""
    from syncer.store.location import require_existing

    url = state_url(args)
    require_existing(url)
    return open_writable(url)


def open_writable(url: str) -> Store:
    """`Store.open(url)` for a command: a server that does not answer is StateUnreachable
    (one line, exit 3) instead of a driver traceback. The library keeps raising
    SQLAlchemyError, which the daemon and the run spool rely on."""
    from sqlalchemy.exc import DatabaseError, OperationalError

    from syncer.store.location import parse_state_url, unreachable
    from syncer.store.read_only import StateUnreadable
    from syncer.store.repository import Store

    try:
        return Store.open(url)
    except DatabaseError as error:
        if isinstance(error, OperationalError) and \
                parse_state_url(url).get_backend_name() != "sqlite":
            raise unreachable(url, error) from None
        raise StateUnreadable(f"cannot use the state database ({type(error.orig).__name__}: "
                              f"{str(error.orig).splitlines()[0][:200]}). Fix: check --state "
                              "or the config's state url") from None


def add_config_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", help="path to syncer.yaml (default: $SYNCER_CONFIG, "
                                         "./syncer.yaml, then the shipped example)")
    parser.add_argument("--tenant", metavar="NAME",
                        help="the tenant's config, <tenants dir>/NAME.yaml, and its own state "
                             "(docs/operations.md#tenants)")
    parser.add_argument("--tenants", metavar="DIR",
                        help="the tenants directory (default: $SYNCER_TENANTS, ./tenants)")
    return parser


def load_args_config(args: argparse.Namespace) -> LoadedConfig:
    """The config a command works on: --tenant's file in the tenants directory, else
    --config (syncer/domain/tenants.py). Both at once is refused: which state is meant?"""
    from syncer.domain.config import load_config

    tenant = getattr(args, "tenant", None)
    if tenant is None:
        return load_config(config_path(getattr(args, "config", None)))
    if getattr(args, "config", None):
        raise BadInput("give --config or --tenant, not both. Fix: --tenant NAME reads "
                       "<tenants dir>/NAME.yaml; drop --config")
    from syncer.domain.tenants import load_tenant, tenants_dir

    return load_tenant(tenants_dir(getattr(args, "tenants", None)), tenant)
