"""Fixtures of the web admin's tests: a state with accounts, a TestClient per role, and
(for the browser tests) the admin served by uvicorn on a free port of 127.0.0.1."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import uvicorn
import yaml
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.store.repository import Store
from syncer.store.web_users import add_user
from syncer.web.app import create_app
from tests.conftest import (
    EXAMPLE_CONFIG,
    EXAMPLE_MODEL,
    NOW,
    Sandboxes,
    sandbox_config_data,
    write_config,
)

ADMIN, VIEWER = "ada", "vic"
PASSWORD = "correct horse battery"
SECRET = "test-secret-" + "x" * 40
_HASH: list[str] = []


def password_hash() -> str:
    """argon2 is slow on purpose; the tests' accounts use its cheapest parameters (a hash
    carries its own, so checking it is cheap too). `syncer user add` uses the defaults."""
    if not _HASH:
        _HASH.append(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
                     .hash(PASSWORD))
    return _HASH[0]


def add_accounts(store: Store) -> None:
    add_user(store, ADMIN, "admin", password_hash(), NOW)
    add_user(store, VIEWER, "viewer", password_hash(), NOW)


@dataclass
class Admin:
    """The admin over one state: the config, the open store, and the app."""

    loaded: LoadedConfig
    store: Store
    app: FastAPI

    def client(self, user: str | None = None) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        if user is not None:
            login(client, user)
        return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def login(client: TestClient, user: str, password: str = PASSWORD) -> int:
    form = client.get("/login")
    response = client.post("/login", data={"name": user, "password": password,
                                           "csrf": csrf_of(form.text), "next": "/"})
    return response.status_code


def sandbox_web_config(sandboxes: Sandboxes, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    """The example config against the sandboxes, with a model file of its own (tests edit
    it as the candidate) and a SQLite state in tmp_path."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    model = tmp_path / "model.yaml"
    shutil.copy(EXAMPLE_MODEL, model)
    data["model"] = str(model)
    return write_config(tmp_path / "syncer.yaml", data)


def build_admin(loaded: LoadedConfig, clock: datetime = NOW) -> Admin:
    store = Store.open(loaded.state_url)
    add_accounts(store)
    return Admin(loaded, store, create_app(loaded, store, secret=SECRET,
                                           clock=lambda: clock, open_runtime=Runtime))


@pytest.fixture
def empty_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Admin]:
    """The admin over a fresh state (no sync yet): enough for every permission check."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    model = tmp_path / "model.yaml"
    shutil.copy(EXAMPLE_MODEL, model)
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["state"] = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    data["model"] = str(model)
    admin = build_admin(write_config(tmp_path / "syncer.yaml", data))
    yield admin
    admin.store.close()


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn in a thread; yields its base URL. The socket listens before
    the server starts, so a browser's first request waits in the backlog: no race, no
    polling for readiness."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
