"""Shared set-up of the webhook tests: a config with `webhooks:` pointed at running sandboxes,
signed requests, and waiting on the state (never on the clock)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.sandbox.salesforce.schema import ORG_ID
from connectors.sandbox.webhooks import sign
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.inbound import generic_signature
from syncer.observe.metrics import SyncMetrics
from syncer.store import inbound_events
from syncer.web.webhook_server import InboundService
from tests.conftest import Sandboxes, sandbox_config_data, sync_once, write_config
from tests.waiting import wait_until

HUBSPOT_SECRET = "hubspot-client-secret"
FORMS_SECRET = "forms-shared-secret"
SALESFORCE_TOKEN = "sf-outbound-token-0123456789"


def webhook_config(sandboxes: Sandboxes, state_url: str, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch, listen: str = "127.0.0.1:0",
                   **extra: Any) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    monkeypatch.setenv("TEST_HUBSPOT_CLIENT_SECRET", HUBSPOT_SECRET)
    monkeypatch.setenv("TEST_FORMS_SECRET", FORMS_SECRET)
    monkeypatch.setenv("TEST_SALESFORCE_TOKEN", SALESFORCE_TOKEN)
    data = sandbox_config_data(sandboxes, state_url, monkeypatch)
    data["webhooks"] = {
        "enabled": True, "listen": listen, "poll_seconds": 0.5,
        "sources": {
            "hubspot": {"kind": "hubspot", "connector": "hubspot",
                        "secret": {"env": "TEST_HUBSPOT_CLIENT_SECRET"}},
            "forms": {"kind": "generic", "secret": {"env": "TEST_FORMS_SECRET"}},
            "salesforce": {"kind": "salesforce", "connector": "salesforce",
                           "organization_id": ORG_ID,
                           "secret": {"env": "TEST_SALESFORCE_TOKEN"}}}}
    data.update(extra)
    return write_config(tmp_path / "syncer.yaml", data)


def post_hubspot(url: str, events: list[dict[str, Any]], *, secret: str = HUBSPOT_SECRET,
                 stamp: int | None = None, signed: bool = True) -> requests.Response:
    body = json.dumps(events).encode()
    moment = str(stamp if stamp is not None else int(time.time() * 1000))
    headers = {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": moment}
    if signed:
        headers["X-HubSpot-Signature-v3"] = sign(secret, "POST", url, body, moment)
    return requests.post(url, data=body, headers=headers, timeout=30)


def post_generic(url: str, payload: object, *, source: str = "forms",
                 secret: str = FORMS_SECRET) -> requests.Response:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    return requests.post(url, data=body, timeout=30, headers={
        "Content-Type": "application/json", "X-Syncer-Source": source,
        "X-Syncer-Timestamp": stamp,
        "X-Syncer-Signature": generic_signature(secret, stamp, body)})


def hand_raise(email: str, event_id: str, kind: str = "demo_request") -> dict[str, Any]:
    return {"event_id": event_id, "person": {"email": email},
            "activity": {"type": kind,
                         "occurred_at": datetime.now(timezone.utc).isoformat(),
                         "attributes": {"form": "Request a demo"}}}


@dataclass
class Daemon:
    """The inbound endpoint and its processor in this process, over a synced state."""

    loaded: LoadedConfig
    runtime: Runtime
    service: InboundService
    metrics: SyncMetrics

    @property
    def hubspot_url(self) -> str:
        return f"{self.service.url}/webhooks/hubspot"

    def counts(self) -> dict[str, int]:
        return inbound_events.counts(self.runtime.require_store())


@contextmanager
def running_daemon(loaded: LoadedConfig) -> Iterator[Daemon]:
    """The state synced once (as after the daemon's first run), then the endpoint and
    the processor serving until the block ends."""
    sync_once(loaded)
    stop = threading.Event()
    metrics = SyncMetrics()
    with Runtime(loaded) as runtime:
        service = InboundService(runtime, metrics, stop)
        service.start()
        wait_until(lambda: service.started, "the webhook server to listen", timeout=60)
        try:
            yield Daemon(loaded, runtime, service, metrics)
        finally:
            stop.set()
            service.stop()
