"""Helpers every command shares: finding the config and the state database."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from syncer.config import EXAMPLE_CONFIG, load_config
from syncer.store.location import require_existing
from syncer.store.read_only import open_read_only
from syncer.store.repository import Store


def config_path(arg: str | None) -> Path:
    """--config, else $SYNCER_CONFIG, else ./syncer.yaml, else the shipped example."""
    for candidate in (arg, os.environ.get("SYNCER_CONFIG"), "syncer.yaml"):
        if candidate and (arg or Path(candidate).exists()):
            return Path(candidate)
    return EXAMPLE_CONFIG


def state_url(args: argparse.Namespace) -> str:
    """--state if given, else the state URL of the config."""
    if getattr(args, "state", None):
        return str(args.state)
    return load_config(config_path(args.config)).state_url


def read_state(args: argparse.Namespace) -> Store:
    """The existing state of a command that only reads it (--state, else the config's),
    opened read-only and never migrated (syncer/store/read_only.py). A SQLite file that is
    not there is refused (NoState: one line, exit 2), never created: a mistyped path must
    not look like an empty history."""
    return open_read_only(state_url(args))


def open_state(args: argparse.Namespace) -> Store:
    """The existing state of a command that reads it and may write to it (`syncer runs`
    writes the runs kept in the spool): refused like `read_state` when it is not there;
    migrated like any store syncer opens for writing."""
    url = state_url(args)
    require_existing(url)
    return Store.open(url)


def add_config_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", help="path to syncer.yaml (default: $SYNCER_CONFIG, "
                                         "./syncer.yaml, then the shipped example)")
    return parser
