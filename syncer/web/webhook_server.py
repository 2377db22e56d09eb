"""The inbound endpoint inside `syncer run` (`webhooks: {enabled: true}`): uvicorn in a
thread on its own port, the processor in another, both over the daemon's store and
metrics, so a hand-raise is stored, counted and re-qualified by the same process."""

from __future__ import annotations

import threading

import structlog
import uvicorn

from syncer.domain.config import LoadedConfig
from syncer.domain.config_base import ConfigError
from syncer.domain.secrets import resolve_secret
from syncer.observe.metrics import SyncMetrics
from syncer.ops.inbound import InboundProcessor
from syncer.run.runtime import SyncRuntime
from syncer.web.served import ServedApp
from syncer.web.webhook_common import Inbound
from syncer.web.webhooks import create_webhook_app

log = structlog.get_logger(__name__)


def source_secrets(loaded: LoadedConfig) -> dict[str, str]:
    """Each source's secret, read now (ConfigError naming the reference, never a value),
    after checking each CRM source names a connector of this config (`syncer
    check-config` asks the same)."""
    names = {c.name for c in loaded.config.connectors}
    problems: list[str] = []
    secrets: dict[str, str] = {}
    for name, source in loaded.config.webhooks.sources.items():
        where = f"{loaded.path}: webhooks.sources.{name}"
        if source.connector is not None and source.connector not in names:
            problems.append(f"{where}.connector: no connector {source.connector!r}. Fix: use "
                            f"one of {', '.join(sorted(names))}")
        if source.kind == "generic" and name in names:
            problems.append(f"{where}: a generic source cannot share a connector's name. "
                            "Fix: rename the source (its records are kept under its name)")
        try:
            secrets[name] = resolve_secret(source.secret, f"{where}.secret")
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return secrets


class InboundService(ServedApp):
    """The endpoint and the processor; `stop()` after the daemon's stop event is set."""

    def __init__(self, runtime: SyncRuntime, metrics: SyncMetrics,
                 stop_event: threading.Event) -> None:
        config = runtime.loaded.config.webhooks
        secrets = source_secrets(runtime.loaded)
        self.processor = InboundProcessor(runtime, metrics, stop_event, config.poll_seconds)
        app = create_webhook_app(Inbound(runtime.loaded, secrets, runtime.require_store(),
                                         metrics, self.processor.wake))
        super().__init__(uvicorn.Config(app, host=config.host, port=config.port,
                                        log_level="warning", server_header=False,
                                        access_log=False), "syncer-webhooks")

    def start(self) -> None:
        self.processor.start()
        super().start()
        log.info("webhooks.started", listen=f"{self.config.host}:{self.config.port}")

    def stop(self) -> None:
        super().stop()
        self.processor.join()
