"""The config `syncer demo` leaves behind, so every later command reads the demo's state.

Design: the demo writes an ordinary config file, and nothing else is special. The usual
lookup (--config, $SYNCER_CONFIG, ./syncer.yaml, the shipped example; syncer/cli/commands/
common.py) then finds it, so `syncer explain`, `audit`, `runs`, `report`, `dead-letters`
and `model history/publish/rollback` read the demo's database without --state or
--config, and `syncer sync --once` syncs the sandboxes again. No hidden pointer file, no
second lookup rule: what the demo did is one readable file the user can copy and edit.

The sandboxes live in the demo's process: a later `syncer sync --once` with this config
starts fresh ones from the same seed, which do not hold what the demo wrote, so that sync
writes everyone's values again (a way to watch a sync, not a continuation of the demo).

Where it goes: ./syncer.yaml when there is none, or when the one there was written by a
demo (its first line is `DEMO_MARK`); a syncer.yaml of the user's own is never
overwritten: the demo's goes into its state folder (.syncer/syncer.yaml) and the demo
prints the --config it then needs (`config_flag`).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from syncer.cli.commands.common import config_path
from syncer.domain.config import EXAMPLE_CONFIG
from syncer.domain.json_values import JSONObject, as_object, objects

#: the first line of a config the demo wrote (and may overwrite next time)
DEMO_MARK = "# Written by `syncer demo`"
HEADER = (f"{DEMO_MARK}: the demo's state and model, with the built-in sandbox CRMs.\n"
          "# Every syncer command run in this folder reads it (the usual config lookup).\n"
          "# Delete it to go back to the shipped example; copy it to start your own.\n")


def demo_config_data(database: Path, model_file: Path, people: int, seed: int
                     ) -> JSONObject:
    """The shipped example config with the demo's state, model and sandbox size; every
    connector on its sandbox, and Salesforce creating the people HubSpot qualifies."""
    data = as_object(yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8")),
                     str(EXAMPLE_CONFIG))
    data["state"] = {"url": f"sqlite:///{database.resolve()}"}
    data["model"] = str(model_file.resolve())
    data["sandbox"] = {"seed": seed, "people": people}
    for connector in objects(data["connectors"], f"{EXAMPLE_CONFIG}: connectors"):
        connector["sandbox"] = True
        if connector["kind"] == "salesforce":
            connector["create"] = {}  # the default gate: created once they are MQL
    return data


def is_demo_config(path: Path) -> bool:
    """Whether `path` is a config a demo wrote (safe to overwrite)."""
    try:
        with path.open(encoding="utf-8") as stream:
            return stream.readline().startswith(DEMO_MARK)
    except (OSError, UnicodeDecodeError):
        return False


def demo_config_path(folder: Path, state_dir: Path) -> Path:
    """./syncer.yaml unless a config of the user's own is there; then the state folder's
    (syncer.cli.demo.yaml when the state folder is this folder: never over the user's)."""
    here = folder / "syncer.yaml"
    if not here.exists() or is_demo_config(here):
        return here
    beside = state_dir / "syncer.yaml"
    return beside if beside.resolve() != here.resolve() else state_dir / "syncer.cli.demo.yaml"


def write_demo_config(path: Path, data: JSONObject) -> Path:
    """Write the demo's config to `path` (the folder exists)."""
    path.write_text(HEADER + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def config_flag(path: Path) -> str:
    """What a follow-up command needs to read the config at `path`: "" when the usual
    lookup finds it from this folder, else " --config PATH"."""
    found = config_path(None)
    if found.exists() and found.resolve() == path.resolve():
        return ""
    return f" --config {path}"


def lookup_note(path: Path) -> str | None:
    """Why the usual lookup does not find the demo's config, if it does not."""
    if not config_flag(path):
        return None
    if os.environ.get("SYNCER_CONFIG"):
        return (f"$SYNCER_CONFIG names {os.environ['SYNCER_CONFIG']}, so commands read that; "
                f"the demo's config is {path}: pass --config {path} (as below)")
    return (f"./syncer.yaml is your own, so the demo left it alone and wrote {path}: pass "
            f"--config {path} (as below), or export SYNCER_CONFIG={path}")
