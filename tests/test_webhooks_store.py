"""Inbound events in the state, the hand-raise shape and the signatures (no server)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, inspect, select

from syncer.domain.config import LoadedConfig, parse_config
from syncer.domain.config_base import ConfigError
from syncer.domain.inbound import (
    HandRaise,
    HandRaiseInvalid,
    check_timestamp,
    generic_signature,
    hubspot_v3_signature,
    parse_hand_raise,
)
from syncer.domain.types import ActivityType
from syncer.store import inbound_events
from syncer.store.inbound_events import NewEvent, Replayed
from syncer.store.migrations import LATEST, migrate
from syncer.store.repository import Store
from syncer.store.tables import schema_version
from tests.conftest import Sandboxes

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


def hand_raise(event_id: str = "evt-1", **person: object) -> dict[str, object]:
    return {"event_id": event_id,
            "person": {"email": "Ada@Example.com", "company": "Acme", **person},
            "activity": {"type": "demo_request", "occurred_at": "2026-12-07T08:59:00Z",
                         "attributes": {"form": "Request a demo"}}}


def test_a_hand_raise_is_checked_field_by_field() -> None:
    parsed = parse_hand_raise(hand_raise(employees="1,200"), now=NOW)
    assert parsed.email == "ada@example.com"
    assert parsed.activity is ActivityType.DEMO_REQUEST
    record = parsed.record("webinar")
    assert (record.source, record.record_id, record.employees) == \
        ("webinar", "ada@example.com", 1200)
    activity = parsed.activity_of("webinar")
    assert activity is not None and activity.source_id == "evt-1"

    with pytest.raises(HandRaiseInvalid) as bad:
        parse_hand_raise({"person": {"email": "nope", "shoe": 1},
                          "activity": {"type": "dance", "occurred_at": "yesterday"}}, now=NOW)
    text = "\n".join(bad.value.problems)
    for field in ("event_id", "person.email", "unknown field(s) shoe", "activity.type",
                  "activity.occurred_at"):
        assert field in text
    assert all("Fix:" in problem for problem in bad.value.problems)


def test_signatures_and_the_timestamp_window() -> None:
    # HubSpot v3: base64 HMAC-SHA256 over method + URI + body + timestamp
    signed = hubspot_v3_signature("secret", "post", "https://x.test/webhooks/hubspot",
                                  b"[]", "1700000000000")
    assert signed == hubspot_v3_signature("secret", "POST",
                                          "https://x.test/webhooks%2Fhubspot", b"[]",
                                          "1700000000000")
    assert signed != hubspot_v3_signature("other", "POST", "https://x.test/webhooks/hubspot",
                                          b"[]", "1700000000000")
    assert generic_signature("s", "1", b"{}").startswith("sha256=")
    now_ms = str(int(NOW.timestamp() * 1000))
    assert check_timestamp(now_ms, NOW, 300, millis=True) is None
    old = str(int((NOW - timedelta(minutes=6)).timestamp() * 1000))
    assert check_timestamp(old, NOW, 300, millis=True) == "stale"
    assert check_timestamp(None, NOW, 300, millis=False) == "unsigned"


def test_events_are_stored_once_and_replays_refused(state_url: str) -> None:
    store = Store.open(state_url)
    events = [NewEvent("e1", "record", "hubspot", "1001", {}),
              NewEvent("e2", "record", "hubspot", "1002", {})]
    assert inbound_events.accept(store, "hubspot", "sig-1", events, NOW) == 2
    with pytest.raises(Replayed):  # the same request again
        inbound_events.accept(store, "hubspot", "sig-1", events, NOW)
    with pytest.raises(Replayed):  # a new signature, but nothing new in it
        inbound_events.accept(store, "hubspot", "sig-2", events[:1], NOW)
    more = [*events, NewEvent("e3", "record", "hubspot", "1003", {})]
    assert inbound_events.accept(store, "hubspot", "sig-3", more, NOW) == 1
    pending = inbound_events.pending(store)
    assert [e.event_id for e in pending] == ["e1", "e2", "e3"]
    inbound_events.finish(store, [pending[0].id], "run-1", NOW)
    inbound_events.note_attempt(store, [pending[1].id])
    assert inbound_events.counts(store) == {"done": 1, "pending": 2}
    assert [e.attempts for e in inbound_events.pending(store)] == [1, 0]
    store.close()


def test_a_state_of_schema_9_migrates_to_inbound_events(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    with store.engine.begin() as connection:
        inbound_events.inbound_events.drop(connection)
        inbound_events.inbound_requests.drop(connection)
        connection.execute(delete(schema_version))
        connection.execute(schema_version.insert(), [{"version": 9, "applied_at": NOW}])
    assert migrate(store.engine) == LATEST
    with store.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        versions = set(connection.execute(select(schema_version.c.version)).scalars())
    assert {"inbound_events", "inbound_requests"} <= tables
    assert 10 in versions
    store.close()


def test_webhooks_config_is_validated() -> None:
    base = {"connectors": [{"name": "hubspot", "kind": "hubspot", "sandbox": True,
                            "fields": {"score": "syncer_score"}}]}
    with pytest.raises(ConfigError, match="names the connector"):
        parse_config({**base, "webhooks": {"sources": {"hs": {"kind": "hubspot",
                                                              "secret": {"env": "X"}}}}},
                     Path("syncer.yaml"))
    with pytest.raises(ConfigError, match="beyond this machine"):
        parse_config({**base, "webhooks": {"listen": "0.0.0.0:8089"}}, Path("syncer.yaml"))
    loaded = parse_config({**base, "webhooks": {
        "enabled": True, "listen": "127.0.0.1:0",
        "sources": {"hs": {"kind": "hubspot", "connector": "hubspot",
                           "secret": {"env": "X"}}}}},
        Path("syncer.yaml"))
    assert loaded.config.webhooks.port == 0


def test_a_stored_hand_raise_reads_back_the_same() -> None:
    parsed = parse_hand_raise(hand_raise(), now=NOW)
    assert HandRaise.from_json(parsed.as_json()) == parsed


def test_check_config_reads_every_webhook_secret(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from syncer.cli.main import main
    from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL

    config = tmp_path / "syncer.yaml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace(
        "model: model.example.yaml", f"model: {EXAMPLE_MODEL}").replace(
        "sandbox:\n  seed: 1\n  people: 500", "sandbox:\n  seed: 1\n  people: 20")
        + "webhooks:\n  enabled: true\n  sources:\n    forms:\n      kind: generic\n"
          "      secret: {env: SYNCER_TEST_UNSET_WEBHOOK_SECRET}\n")
    assert main(["check-config", "--config", str(config)]) != 0
    err = capsys.readouterr().err
    assert "webhooks.sources.forms.secret" in err
    assert "SYNCER_TEST_UNSET_WEBHOOK_SECRET is not set" in err


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_events_wait_while_another_run_holds_the_lock(sandbox_config: LoadedConfig,
                                                      sandboxes: Sandboxes) -> None:
    from syncer.cli.runtime import Runtime
    from syncer.observe.metrics import SyncMetrics
    from syncer.ops.inbound import InboundProcessor
    from syncer.store.locks import acquire
    from tests.conftest import sync_once

    sync_once(sandbox_config)
    contact = str(sandboxes.hubspot.records()[0]["id"])
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        inbound_events.accept(store, "hubspot", "sig", [
            NewEvent("7", "record", "hubspot", contact, {})], NOW)
        processor = InboundProcessor(runtime, SyncMetrics(), threading.Event(), 1.0)
        lock = acquire(store.engine, sorted(runtime.connectors), "a-scheduled-run")
        try:
            held = processor.process_pending()
        finally:
            lock.release()
        assert held is not None and held.status == "skipped"
        assert inbound_events.counts(store) == {"pending": 1}  # not consumed, not dropped
        assert [e.attempts for e in inbound_events.pending(store)] == [0]
        ran = processor.process_pending()
        assert ran is not None and ran.status == "succeeded"
        assert inbound_events.counts(store) == {"done": 1}
