"""A `syncer run` daemon SIGKILLed in the middle of a webhook burst loses no event: what it
answered 202 to is in the state, what it never answered is sent again by the sender, and
the restarted daemon consumes whatever was left pending."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.webhooks import attach_webhooks
from syncer.store import inbound_events
from syncer.store.inbound_events import inbound_events as events_table
from syncer.store.repository import Store
from tests.conftest import Sandboxes, sync_once
from tests.sandbox_control import control
from tests.waiting import wait_until
from tests.webhook_helpers import HUBSPOT_SECRET, post_hubspot, webhook_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def daemon_process(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_STATE_URL"}
    with (config.parent / "daemon.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "syncer.cli", "run", "--config",
                                 str(config)], env=env, stdout=log, stderr=log)


def stored_ids(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return set(connection.execute(select(events_table.c.event_id)).scalars())


def test_sigkill_mid_burst_loses_no_event(sandboxes: Sandboxes, sqlite_url: str,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    port, health = free_port(), free_port()
    loaded = webhook_config(sandboxes, sqlite_url, tmp_path, monkeypatch,
                            listen=f"127.0.0.1:{port}", health={"port": health})
    sync_once(loaded)
    hubspot = sandboxes.hubspot
    assert isinstance(hubspot, HubSpotSandbox)
    contacts = [str(r["id"]) for r in hubspot.records()[:10]]
    store = Store.open(loaded.state_url)
    process = daemon_process(loaded.path)
    sender = attach_webhooks(hubspot, f"http://127.0.0.1:{port}/webhooks/hubspot",
                             HUBSPOT_SECRET, attempts=100_000, first_wait=0.05, max_wait=0.5)
    try:
        wait_until(lambda: listening(port), "the daemon to listen", timeout=60)
        edits = 400

        def edit(numbers: range) -> None:
            for number in numbers:
                control(hubspot, "edit", id=contacts[number % len(contacts)],
                        field="jobtitle", value=f"Title {number}")

        edit(range(edits // 2))
        wait_until(lambda: len(stored_ids(store)) >= 40, "part of the burst to be stored",
                   timeout=60)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        # The rest of the burst comes while the daemon is down (and may be in flight at
        # the kill): however fast or slow the machine, the kill lands mid-burst.
        edit(range(edits // 2, edits))
        at_kill = len(stored_ids(store))
        assert at_kill < edits

        process = daemon_process(loaded.path)
        assert sender.flush(timeout=300)
        wait_until(lambda: inbound_events.counts(store).get("pending", 0) == 0
                   and set(sender.delivery.queued_at) <= stored_ids(store),
                   "every event stored and consumed", timeout=300)
        assert sender.flush(timeout=300)  # the echoes of the last run's writes, if any
        wait_until(lambda: inbound_events.counts(store).get("pending", 0) == 0,
                   "the last events consumed", timeout=300)
        # the daemon's /metrics counts what its webhook endpoint refused
        assert post_hubspot(f"http://127.0.0.1:{port}/webhooks/hubspot", [],
                            signed=False).status_code == 401
        metrics = requests.get(f"http://127.0.0.1:{health}/metrics", timeout=30).text
        assert 'syncer_webhook_rejected_total{reason="unsigned",source="hubspot"} 1.0' \
            in metrics
    finally:
        sender.stop()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert stored_ids(store) == set(sender.delivery.queued_at)  # none lost, none twice
    with store.engine.connect() as connection:
        rows = connection.execute(select(events_table.c.status, events_table.c.payload))
        edited = [status for status, payload in rows if payload["propertyName"] == "jobtitle"]
    assert len(edited) == edits and set(edited) == {"done"}
    people = store.load_people(store.person_keys())
    titles = {r.record_id: r.title for records, _ in people.values() for r in records
              if r.source == "hubspot"}
    for offset, contact in enumerate(contacts):  # each contact's last edit is what is held
        last = max(n for n in range(edits) if n % len(contacts) == offset)
        assert titles[contact] == f"Title {last}"
    store.close()
