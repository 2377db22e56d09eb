"""`web: {enabled: true}` serves the admin from inside `syncer run`, on the daemon's store;
an address beyond loopback is refused unless the config allows it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
import yaml

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig, parse_config
from syncer.domain.config_base import ConfigError
from syncer.web.in_daemon import WebThread
from tests.conftest import EXAMPLE_CONFIG, write_config


def test_the_daemon_serves_the_admin_when_the_config_says_so(
        sandbox_config: LoadedConfig, tmp_path: Path) -> None:
    data = sandbox_config.config.model_dump(mode="json", exclude_none=True)
    data["web"] = {"enabled": True, "port": 0}
    loaded = write_config(tmp_path / "web.yaml", data)
    with Runtime(loaded) as runtime:
        web = WebThread(loaded, runtime.require_store(), Runtime)
        web.start()
        try:
            tick = threading.Event()
            while not web.started:  # uvicorn's own flag, set once it listens
                assert web.thread.is_alive()
                tick.wait(0.05)
            probe = requests.get(f"{web.url}/healthz", timeout=10)
            page = requests.get(f"{web.url}/runs", timeout=10, allow_redirects=False)
        finally:
            web.stop()
    assert probe.status_code in (200, 503) and probe.text.strip() in ("ok", "not ok")
    assert page.status_code in (302, 303, 307) and "/login" in page.headers["location"]
    assert not web.thread.is_alive()


def test_an_admin_beyond_loopback_needs_allow_remote(tmp_path: Path) -> None:
    base = {**yaml.safe_load(EXAMPLE_CONFIG.read_text()),
            "web": {"enabled": True, "host": "0.0.0.0"}}
    with pytest.raises(ConfigError) as refused:
        parse_config(base, tmp_path / "syncer.yaml")
    assert any("web" in problem and "allow_remote" in problem
               for problem in refused.value.problems)
    parse_config({**base, "web": {"enabled": True, "host": "0.0.0.0", "allow_remote": True}},
                 tmp_path / "syncer.yaml")
