"""Helpers every command shares: finding the config and the state database."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from syncer.config import EXAMPLE_CONFIG, load_config


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


def add_config_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", help="path to syncer.yaml (default: $SYNCER_CONFIG, "
                                         "./syncer.yaml, then the shipped example)")
    return parser
