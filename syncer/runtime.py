"""Wiring: from a validated config to a store, a model, connectors and, where asked for,
running built-in sandboxes.

A connector with `sandbox: true` gets its CRM emulator started in this process, seeded from
the config's `sandbox` section, and is pointed at it; that is how `syncer demo` and a fresh
install work with no CRM account at all.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import TracebackType

from connectors import build_connector, build_sandbox
from connectors.base import Connector, Sandbox
from connectors.sandbox_world import World
from syncer.config import LoadedConfig, connector_settings
from syncer.qualify import Model, load_model
from syncer.store.repository import Store


class Runtime:
    """Everything one process needs to sync. Close it (or use `with`) to stop sandboxes."""

    def __init__(self, loaded: LoadedConfig, *, now: datetime | None = None,
                 open_store: bool = True) -> None:
        self.loaded = loaded
        self.model: Model = load_model(loaded.model_path)
        self.sandboxes: dict[str, Sandbox] = {}
        self.connectors: dict[str, Connector] = {}
        self.store: Store | None = None
        try:
            self._start(now or datetime.now(timezone.utc), open_store)
        except BaseException:
            self.close()
            raise

    def _start(self, now: datetime, open_store: bool) -> None:
        config = self.loaded.config
        world: World | None = None
        for connector in config.connectors:
            endpoint = None
            if connector.sandbox:
                world = world or World(config.sandbox.seed, config.sandbox.people, now)
                sandbox = build_sandbox(connector.kind, world)
                sandbox.start()
                self.sandboxes[connector.name] = sandbox
                endpoint = {"base_url": sandbox.base_url, "credentials": sandbox.credentials,
                            "ca_file": sandbox.ca_file}
            settings = connector_settings(self.loaded, connector, endpoint)
            self.connectors[connector.name] = build_connector(settings)
        if open_store:
            self.store = Store.open(self.loaded.state_url)

    def require_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("this runtime was opened without a store")
        return self.store

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
        self.connectors.clear()
        for sandbox in self.sandboxes.values():
            sandbox.stop()
        self.sandboxes.clear()
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
