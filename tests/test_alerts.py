"""Alerts reach a local webhook receiver on 127.0.0.1; the webhook URL never reaches a log."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from syncer.cli.runtime import Runtime
from syncer.domain.config import AlertsConfig, LoadedConfig
from syncer.domain.config_base import ConfigError
from syncer.domain.connector import ConnectorError
from syncer.observe.logs import configure_logging
from syncer.ops.alerts import Alerts, WebhookSender
from syncer.ops.scheduler import Daemon
from syncer.store.repository import Store
from tests.conftest import Sandboxes, sandbox_config_data, write_config

#: The part of a Slack webhook URL that is the credential.
HOOK_PATH = "/services/T0SYNCER1/B0SYNCER2/XxSecretWebhookToken42"


class Receiver:
    """A webhook receiver: records each JSON body; the first `fail_first` answer `status`
    (with a Retry-After header when `retry_after` is given)."""

    def __init__(self, fail_first: int = 0, status: int = 500,
                 retry_after: str | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.paths.append(self.path)
                failing = len(receiver.paths) <= receiver.fail_first
                if not failing:
                    receiver.bodies.append(body)
                self.send_response(status if failing else 200)
                if failing and retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{HOOK_PATH}"

    def texts(self) -> list[str]:
        return [str(b["text"]) for b in self.bodies]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("debug", stream)
    yield stream
    configure_logging("info")


def test_a_message_is_retried_until_delivered_and_the_url_is_never_logged(
        log_output: io.StringIO) -> None:
    waits: list[float] = []
    with Receiver(fail_first=2) as receiver:
        sender = WebhookSender(receiver.url, sleep=waits.append)
        assert sender.send("syncer: sync of hubspot failed", "run_failed")
        sender.close()
    assert receiver.paths == [HOOK_PATH] * 3
    assert receiver.bodies == [{"text": "syncer: sync of hubspot failed"}]
    assert waits == [1.0, 2.0]
    output = log_output.getvalue()
    events = [json.loads(line) for line in output.splitlines()]
    assert [e["event"] for e in events] == ["alert.attempt_failed"] * 2 + ["alert.sent"]
    assert "XxSecretWebhookToken42" not in output and "127.0.0.1" not in output


def test_a_busy_webhook_is_waited_for_as_long_as_it_asks_up_to_30_seconds() -> None:
    cases = [(429, "7", [7.0, 7.0]), (503, "120", [30.0, 30.0]), (500, "1", [1.0, 2.0])]
    for status, retry_after, expected in cases:
        waits: list[float] = []
        with Receiver(fail_first=2, status=status, retry_after=retry_after) as receiver:
            assert WebhookSender(receiver.url, sleep=waits.append).send("hello")
        assert waits == expected, (status, retry_after)


def test_an_unreachable_or_refusing_webhook_never_raises(log_output: io.StringIO) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    waits: list[float] = []
    sender = WebhookSender(f"http://127.0.0.1:{closed}{HOOK_PATH}", sleep=waits.append,
                           timeout=2)
    assert sender.send("hello") is False
    assert len(waits) == 2  # three attempts
    with Receiver(fail_first=5, status=404) as receiver:
        refusing = WebhookSender(receiver.url, sleep=waits.append)
        assert refusing.send("hello") is False
    assert len(receiver.paths) == 1  # a 404 is not worth retrying
    output = log_output.getvalue()
    assert "XxSecretWebhookToken42" not in output and str(closed) not in output
    assert "alert.not_delivered" in output


def alert_config(sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 url: str) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    monkeypatch.setenv("TEST_ALERT_WEBHOOK", url)
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    data["health"] = {"enabled": False}
    data["alerts"] = {"webhook": {"env": "TEST_ALERT_WEBHOOK"}, "failed_runs_in_a_row": 3}
    return write_config(tmp_path / "syncer.yaml", data)


class FailingPulls:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def people(self, *_args: Any, **_kwargs: Any) -> Any:
        raise ConnectorError("connector hubspot: HubSpot answered 401 INVALID_AUTHENTICATION")

    full_pages = people  # a full pull reads pages by position (run/pull.py)


def test_failed_runs_and_a_failing_streak_reach_the_receiver(
        sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        log_output: io.StringIO) -> None:
    with Receiver() as receiver:
        loaded = alert_config(sandboxes, tmp_path, monkeypatch, receiver.url)
        with Runtime(loaded) as runtime:
            daemon = Daemon(runtime)
            assert daemon.health is None and daemon.alerts is not None
            real = runtime.connectors["hubspot"]
            runtime.connectors["hubspot"] = FailingPulls(real)  # type: ignore[assignment]
            for _ in range(3):
                daemon._job("hubspot")()
            runtime.connectors["hubspot"] = real
            daemon._job("hubspot")()  # a good run: no alert
            daemon._job("salesforce")()
            runs = runtime.require_store().runs()
    failed = [r for r in runs if r.status == "failed"]
    assert [r.status for r in runs] == ["succeeded", "succeeded", "failed", "failed", "failed"]
    error = "ConnectorError: connector hubspot: HubSpot answered 401 INVALID_AUTHENTICATION"
    assert receiver.texts() == [
        f"syncer: sync of hubspot failed (run {failed[2].run_id}): {error}",
        f"syncer: sync of hubspot failed (run {failed[1].run_id}): {error}",
        f"syncer: connector hubspot has failed 3 runs in a row. Last error: {error}",
    ]
    output = log_output.getvalue()
    assert "XxSecretWebhookToken42" not in output
    events = [json.loads(line) for line in output.splitlines()]
    assert sum(1 for e in events if e["event"] == "alert.sent") == 3
    failures = [e for e in events if e["event"] == "sync.failed"]
    assert len(failures) == 3 and all(e["connector"] == "hubspot" for e in failures)


def test_dead_letters_alert_when_they_rise_above_the_threshold(sqlite_url: str) -> None:
    counts: dict[str, int] = {}
    store = Store.open(sqlite_url)
    with Receiver() as receiver:
        alerts = Alerts(AlertsConfig(dead_letters_above=5), WebhookSender(receiver.url),
                        dead_letters=lambda _store: dict(counts))
        sent = []
        for hubspot, salesforce in ((1, 2), (4, 3), (5, 3), (1, 1), (0, 9)):
            counts.update(hubspot=hubspot, salesforce=salesforce)
            sent.append(alerts.after_run(store, ["hubspot"]))
        alerts.close()
    store.close()
    assert sent == [[], ["syncer: 7 dead letters waiting (alert above 5): hubspot 4, "
                         "salesforce 3. List them with `syncer dead-letters`."], [], [],
                    ["syncer: 9 dead letters waiting (alert above 5): hubspot 0, "
                     "salesforce 9. List them with `syncer dead-letters`."]]
    assert receiver.texts() == [m for batch in sent for m in batch]


def test_dead_letters_are_counted_from_the_store(sqlite_url: str) -> None:
    dead_letters = pytest.importorskip("syncer.store.dead_letters")
    from syncer.observe.metrics import dead_letter_counts

    store = Store.open(sqlite_url)
    try:
        assert dead_letter_counts(store) == {}
        letters = [{"connector": c, "record_id": str(i), "object_type": "contact",
                    "person_key": f"p{i}@example.com", "fields": {"syncer_score": "5"},
                    "error_code": "INVALID", "message": "bad value"}
                   for c, i in (("hubspot", 1), ("hubspot", 2), ("salesforce", 3))]
        with store.transaction() as tx:
            dead_letters.park(tx, letters, datetime.now(timezone.utc), "run1")
        assert dead_letter_counts(store) == {"hubspot": 2, "salesforce": 1}
    finally:
        store.close()


def test_the_webhook_secret_must_be_set_and_be_a_url(
        sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = alert_config(sandboxes, tmp_path, monkeypatch, "not a url: XxSecretWebhookToken42")
    with pytest.raises(ConfigError) as caught:
        Alerts.from_config(loaded)
    assert "alerts.webhook" in str(caught.value)
    assert "XxSecretWebhookToken42" not in str(caught.value)
    monkeypatch.delenv("TEST_ALERT_WEBHOOK")
    with pytest.raises(ConfigError, match="TEST_ALERT_WEBHOOK is not set"):
        Alerts.from_config(loaded)
