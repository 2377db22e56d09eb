"""The example config pointed at running sandboxes, as every benchmark needs it: each
connector's base URL, CA file and credentials, the credentials by reference to environment
variables (a config never holds a secret)."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Protocol

import yaml

REPO = Path(__file__).resolve().parents[1]


class RunningSandbox(Protocol):
    base_url: str
    ca_file: str | None
    credentials: dict[str, str]


def example_config(folder: Path) -> dict[str, Any]:
    """config/syncer.example.yaml with the example model and a SQLite state in `folder`."""
    data: dict[str, Any] = yaml.safe_load((REPO / "config" / "syncer.example.yaml").read_text())
    data["model"] = str(REPO / "config" / "model.example.yaml")
    data["state"] = {"url": f"sqlite:///{folder / 'state.db'}"}
    return data


def point_at_sandboxes(data: dict[str, Any], boxes: Mapping[str, RunningSandbox], *,
                       prefix: str = "BENCH",
                       env: MutableMapping[str, str] | None = None) -> None:
    """Point every connector of `data` at the sandbox of its kind in `boxes`; each secret
    goes into `env` (os.environ by default) as PREFIX_CONNECTOR_KEY, named in the config."""
    target = os.environ if env is None else env
    for connector in data["connectors"]:
        sandbox = boxes[connector["kind"]]
        connector.pop("sandbox", None)
        connector["base_url"] = sandbox.base_url
        if sandbox.ca_file:
            connector["ca_file"] = sandbox.ca_file
        credentials = {}
        for key, value in sandbox.credentials.items():
            variable = f"{prefix}_{connector['name'].upper()}_{key.upper()}"
            target[variable] = value
            credentials[key] = {"env": variable}
        connector["credentials"] = credentials
