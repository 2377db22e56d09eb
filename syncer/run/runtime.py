"""What a scheduler, a worker or the web admin needs of the process's wiring: a store, the
connectors and the active model. The wiring itself (syncer/cli/runtime.py) picks concrete
connectors and starts sandboxes; the floors above `run` are handed one, never build it, so
only the command line names a CRM."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol

from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.qualify import Model
from syncer.run.publication import ActiveModel
from syncer.store.repository import Store


class SyncRuntime(Protocol):
    """One process's store, connectors and model (syncer.cli.runtime.Runtime)."""

    loaded: LoadedConfig
    store: Store | None
    model: Model

    @property
    def connectors(self) -> Mapping[str, Connector]: ...

    def require_store(self) -> Store: ...

    def refresh_model(self, *, strict: bool = False) -> ActiveModel: ...

    def close(self) -> None: ...

    def __enter__(self) -> SyncRuntime: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


#: builds a runtime for a config: `open_runtime(loaded)` opens its store too,
#: `open_runtime(loaded, open_store=False)` only the connectors (a replay, a check)
OpenRuntime = Callable[..., SyncRuntime]
