"""Wiring: from a validated config to a store, a model, connectors and, where asked for,
running built-in sandboxes.

A connector with `sandbox: true` gets its CRM emulator started in this process, seeded from
the config's `sandbox` section, and is pointed at it; that is how `syncer demo` and a fresh
install work with no CRM account at all.

The model is the store's active one (syncer/run/publication.py): opening a runtime with a store
publishes the config's model file when the rules there say so, and `refresh_model` resolves
it again before each scheduled run, so an edit, a publish or a rollback made while the
daemon runs takes effect at its next run. Without a store it is the model file itself.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import TracebackType

from connectors import build_connector
from connectors.hubspot.errors import ERROR_CODES as HUBSPOT_ERROR_CODES
from connectors.salesforce.errors import ERROR_CODES as SALESFORCE_ERROR_CODES
from connectors.sandbox import build_sandbox
from connectors.sandbox.world import World
from syncer.domain.config import LoadedConfig, connector_settings
from syncer.domain.config_base import ConfigError
from syncer.domain.connector import Connector, Sandbox
from syncer.domain.errors import REGISTRY as ERROR_CAUSES
from syncer.qualify import Model, load_model
from syncer.run.diff import check_score_fields
from syncer.run.publication import ActiveModel, active_model
from syncer.store.bulk_jobs import StoredQueryJobs
from syncer.store.repository import Store

# Each CRM's error codes by cause (syncer/domain/errors.py), registered where the process is
# wired: the commands, the daemon, the workers, the demo and the web admin all import this.
ERROR_CAUSES.register(HUBSPOT_ERROR_CODES, SALESFORCE_ERROR_CODES)


class Runtime:
    """Everything one process needs to sync. Close it (or use `with`) to stop sandboxes."""

    def __init__(self, loaded: LoadedConfig, *, now: datetime | None = None,
                 open_store: bool = True, world: World | None = None) -> None:
        """Raises ModelError when the model file does not validate and no rollback pins
        another model (syncer/run/publication.py). `world`: the one the sandboxes serve
        (default: the config's `sandbox` seed and size)."""
        self.loaded = loaded
        self.sandboxes: dict[str, Sandbox] = {}
        self.connectors: dict[str, Connector] = {}
        self.store: Store | None = None
        self.active: ActiveModel | None = None
        if not open_store:
            self.model: Model = load_model(loaded.model_path)
        try:
            if open_store:
                self.store = Store.open(self.loaded.state_url)
                self.refresh_model(strict=True)
            problems = check_score_fields(loaded, self.model)
            if problems:  # a named score mapped in the config that the model lacks
                raise ConfigError(problems)
            self._start(now or datetime.now(timezone.utc), world)
        except BaseException:
            self.close()
            raise

    def refresh_model(self, *, strict: bool = False) -> ActiveModel:
        """The active model now (publishing the file if the rules say so); also kept as
        `self.model`. Not strict: a model file that does not validate keeps the active
        model and logs `model.file_invalid` (the daemon must not stop over a typo)."""
        self.active = active_model(self.require_store(), self.loaded,
                                   datetime.now(timezone.utc), strict=strict)
        self.model = self.active.model
        return self.active

    def _start(self, now: datetime, world: World | None) -> None:
        config = self.loaded.config
        for connector in config.connectors:
            sandbox = None
            if connector.sandbox:
                world = world or World(config.sandbox.seed, config.sandbox.people, now)
                sandbox = build_sandbox(connector.kind, world)
                sandbox.start()
                self.sandboxes[connector.name] = sandbox
            settings = connector_settings(self.loaded, connector, sandbox)
            built = self.connectors[connector.name] = build_connector(settings)
            keep_jobs = getattr(built, "keep_query_jobs", None)  # Salesforce Bulk API 2.0
            if keep_jobs is not None and self.store is not None:
                # the state remembers open query jobs, so a killed run's are aborted
                keep_jobs(StoredQueryJobs(self.store, connector.name))

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
