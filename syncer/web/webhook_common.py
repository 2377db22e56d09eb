"""What the webhook routes share: the routes' context (`Inbound`), the refusal that counts
a 401 in /metrics, and the body size limit. Apart from syncer/web/webhooks.py so that the
Salesforce routes (syncer/web/salesforce_webhooks.py) use them without importing the module
that mounts them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog
from fastapi.responses import JSONResponse

from syncer.domain.config import LoadedConfig
from syncer.domain.inbound import Rejection
from syncer.domain.webhook_config import WebhookSource
from syncer.observe.metrics import SyncMetrics
from syncer.store.repository import Store

log = structlog.get_logger("syncer.web.webhooks")

#: a request body larger than this is refused before it is read further
MAX_BODY = 1_000_000


@dataclass(frozen=True)
class Inbound:
    """What the routes need: the config, resolved secrets per source, the store, the
    metrics and how to wake the processor."""

    loaded: LoadedConfig
    secrets: Mapping[str, str]
    store: Store
    metrics: SyncMetrics
    wake: Callable[[], None]
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def source(self, name: str | None, kind: str) -> tuple[str, WebhookSource] | None:
        """The source of this kind named `name`, or the only one of its kind."""
        sources = {n: s for n, s in self.loaded.config.webhooks.sources.items()
                   if s.kind == kind}
        if name is not None:
            found = sources.get(name)
            return (name, found) if found is not None else None
        return next(iter(sources.items())) if len(sources) == 1 else None


def refuse(inbound: Inbound, source: str, reason: Rejection) -> JSONResponse:
    inbound.metrics.webhook_rejected.labels(source=source, reason=reason).inc()
    log.warning("webhook.refused", source=source, reason=reason)
    return JSONResponse({"status": "refused", "reason": reason}, status_code=401)


def bad_payload(problems: list[str]) -> JSONResponse:
    return JSONResponse({"status": "invalid", "problems": problems}, status_code=400)
