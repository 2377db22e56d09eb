"""Rate-limit answers do not spend the attempts kept for errors (issue 18, item 5): the run
waits as the API says up to its deadline, then stops cleanly, its cursors where they
were, nothing dead-lettered. No test here sleeps: the retry policy's sleep only records
the waits it is asked for (the deadline counts those), and the sandboxes answer at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests

from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy, TransientError
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.faults import FaultConfig, SalesforceLimits
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.api_usage import RATE_LIMITED, ApiUsage, RateLimitDeadline, RetriesExhausted
from syncer.domain.config import LoadedConfig, connector_settings, parse_config
from syncer.domain.config_base import ConfigError
from syncer.domain.connector import Connector, ConnectorError, Sandbox
from syncer.domain.types import RecordUpdate
from syncer.qualify import load_model
from syncer.run.pipeline import RunSummary, run_sync
from syncer.run.push import Writer
from syncer.store import dead_letters
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_MODEL, NOW, Sandboxes, sandbox_config_data, write_config

#: of every 11 requests, the last 10 are refused: ten rate-limit answers in a row after
#: each answered request (the request after a success starts the next burst)
BURSTS = FaultConfig(burst_every=11, burst_length=10)
#: every request refused
ALWAYS = FaultConfig(burst_every=1, burst_length=1)


class Waits:
    """A sleep that never sleeps: it records each wait it is asked for, in all and per
    connector (each connector has its own allowance; their pushes may run side by side)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.by_connector: dict[str, list[float]] = {}

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)

    def of(self, name: str) -> Callable[[float], None]:
        """The sleep for connector `name`: recorded under its name and in all."""
        mine = self.by_connector.setdefault(name, [])

        def sleep(seconds: float) -> None:
            mine.append(seconds)
            self(seconds)
        return sleep


@pytest.fixture
def world() -> World:
    return World(seed=7, size=400, now=NOW)


@pytest.fixture
def crms(world: World) -> Iterator[Sandboxes]:
    """Both sandboxes without their own request windows (the policy never really waits,
    so only the injected bursts may refuse a request), Salesforce with pages of 100."""
    hubspot = HubSpotSandbox(world, requests_per_10s=None, search_requests_per_second=None)
    salesforce = SalesforceSandbox(world, limits=SalesforceLimits(query_batch=100))
    hubspot.start()
    salesforce.start()
    try:
        yield Sandboxes(world, cast(Sandbox, hubspot), cast(Sandbox, salesforce))
    finally:
        hubspot.stop()
        salesforce.stop()


def config(crms: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           **connector: Any) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(crms, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    for entry in data["connectors"]:
        entry.update(connector)
    return write_config(tmp_path / "syncer.yaml", data)


def connectors_for(loaded: LoadedConfig, waits: Waits) -> dict[str, Connector]:
    """The real connectors, with the default policy (6 attempts) sleeping through `waits`;
    HubSpot with small pages (more requests, so more bursts)."""
    built: dict[str, Connector] = {}
    for entry in loaded.config.connectors:
        policy = RetryPolicy(sleep=waits.of(entry.name))
        settings = connector_settings(loaded, entry)
        if entry.kind == "hubspot":
            built[entry.name] = HubSpotConnector(replace(settings, options={
                **settings.options, "retry_policy": policy, "page_size": 20,
                "events_page_size": 200}))
        else:
            built[entry.name] = SalesforceConnector(settings, retry=policy)
    return built


def sync(loaded: LoadedConfig, waits: Waits, now: datetime = NOW) -> RunSummary:
    connectors = connectors_for(loaded, waits)
    store = Store.open(loaded.state_url)
    try:
        return run_sync(loaded, store, connectors, load_model(EXAMPLE_MODEL), now)
    finally:
        store.close()
        for connector in connectors.values():
            connector.close()


def state(loaded: LoadedConfig) -> tuple[dict[tuple[str, str], datetime | None], int, Any]:
    """(cursors, open dead letters, the latest run) as the store holds them."""
    store = Store.open(loaded.state_url)
    try:
        cursors = {(name, stream): store.cursor(name, stream)
                   for name in ("hubspot", "salesforce") for stream in ("people", "activities")}
        return cursors, dead_letters.open_count(store), store.runs(1)[0]
    finally:
        store.close()


def test_twenty_bursts_of_ten_rate_limits_on_each_crm_cost_no_attempt(
        crms: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = config(crms, tmp_path, monkeypatch)
    for sandbox in (crms.hubspot, crms.salesforce):
        sandbox.faults.config = BURSTS  # type: ignore[attr-defined]
    waits = Waits()
    summary = sync(loaded, waits)
    _, letters, run = state(loaded)
    assert summary.status == run.status == "succeeded", run.error
    assert letters == 0 and not summary.failures
    assert sum(summary.fields_written.values()) > 0
    for sandbox in (crms.hubspot, crms.salesforce):
        bursts = sandbox.faults.counts()["burst_429"]  # type: ignore[attr-defined]
        assert bursts >= 20 * 10, (sandbox.kind, bursts)
    # every refused request was waited for, as the policy says, and nothing else failed
    refused = sum(s.faults.counts()["burst_429"] for s in  # type: ignore[attr-defined]
                  (crms.hubspot, crms.salesforce))
    assert len([w for w in waits.seconds if w >= 0.5]) >= refused
    assert run.per_connector("api_retries")["hubspot"] >= 200
    # Salesforce's 403 REQUEST_LIMIT_EXCEEDED counts as rate limited, like HubSpot's 429s
    assert {name: n >= 200 for name, n in run.per_connector("api_rate_limited").items()} == {
        "hubspot": True, "salesforce": True}


def test_a_deadline_hit_in_the_push_stops_cleanly_and_the_next_run_writes_it_all(
        crms: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = config(crms, tmp_path, monkeypatch, rate_limit_deadline_seconds=30)
    original = Writer.send
    pushes: list[str] = []

    def push_into_a_wall(self: Writer, name: str, items: Any, *wire: Any) -> Any:
        pushes.append(name)
        for sandbox in (crms.hubspot, crms.salesforce):
            sandbox.faults.config = ALWAYS  # type: ignore[attr-defined]
        return original(self, name, items, *wire)

    monkeypatch.setattr(Writer, "send", push_into_a_wall)
    waits = Waits()
    summary = sync(loaded, waits)
    cursors, letters, run = state(loaded)
    assert pushes and summary.status == run.status == RATE_LIMITED
    assert run.error and "rate_limit_deadline_seconds" in run.error
    # the connector that stopped the run spent its allowance of rate-limit waiting up to the
    # deadline, not past it (its own count, in the run's error); an error met on the way
    # (a dropped connection on a busy machine) waits on top, by the errors' own backoff
    spent = re.search(r"after waiting (\d+) s of the run's 30 s allowance", run.error)
    assert spent and 30 - 4.4 <= int(spent.group(1)) <= 30
    assert max(sum(seconds) for seconds in waits.by_connector.values()) >= int(
        spent.group(1)) - 0.5  # the error prints whole seconds
    assert letters == 0 and not summary.failures
    # The pull stored everything, but nothing of it was written: the cursors are back
    # where the run found them (none: the next run pulls from scratch again).
    assert set(cursors.values()) == {None}

    monkeypatch.setattr(Writer, "send", original)
    for sandbox in (crms.hubspot, crms.salesforce):
        sandbox.faults.config = FaultConfig()  # type: ignore[attr-defined]
    after = sync(loaded, Waits())
    cursors, letters, run = state(loaded)
    assert after.status == "succeeded" and letters == 0
    assert sum(after.fields_written.values()) > 0 and None not in cursors.values()
    store = Store.open(loaded.state_url)
    try:
        trail = store.audit_rows()
    finally:
        store.close()
    key = ("run_id", "connector", "record_id", "field")
    intents = {tuple(r[k] for k in key) for r in trail if r["outcome"] == "intent"}
    closed = {tuple(r[k] for k in key) for r in trail if r["outcome"] != "intent"}
    assert intents <= closed  # the refused push's intents were closed as not written


def test_a_deadline_hit_in_the_pull_leaves_the_cursors_where_they_were(
        crms: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = config(crms, tmp_path, monkeypatch, rate_limit_deadline_seconds=60)
    assert sync(loaded, Waits()).status == "succeeded"
    before, _, _ = state(loaded)
    crms.salesforce.faults.config = ALWAYS  # type: ignore[attr-defined]
    waits = Waits()
    summary = sync(loaded, waits, NOW + timedelta(hours=1))
    cursors, letters, run = state(loaded)
    assert summary.status == run.status == RATE_LIMITED
    assert cursors == before and letters == 0
    assert 60 - 4.4 <= sum(waits.seconds) <= 60


def test_records_refused_as_rate_limited_are_sent_again_never_failed(
        crms: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = config(crms, tmp_path, monkeypatch)
    waits = Waits()
    connector = connectors_for(loaded, waits)["hubspot"]
    assert isinstance(connector, HubSpotConnector)
    try:
        ids = [p.record_id for p in next(iter(connector.people()))[:3]]
        batch = connector._writes.batch
        real = batch.update_with_http_info
        sent: list[list[str]] = []

        def first_answer_refuses_two(body: Any, **options: Any) -> Any:
            sent.append([str(i.id) for i in body.inputs])
            if len(sent) > 1:
                return real(body, **options)
            refused = {"status": "error", "category": "RATE_LIMITS", "context": {"ids": ids[1:]},
                       "message": "You have reached your secondly limit.", "errors": [],
                       "links": {}}
            body = {"status": "COMPLETE", "results": [{"id": ids[0], "properties": {}}],
                    "numErrors": 1, "errors": [refused]}
            return SimpleNamespace(data=json.dumps(body).encode(), status=207, headers={})
        monkeypatch.setattr(batch, "update_with_http_info", first_answer_refuses_two)
        results = connector.push([RecordUpdate(i, "contact", {"syncer_score": "42"})
                                  for i in ids])
    finally:
        connector.close()
    assert [(r.record_id, r.ok) for r in results] == [(i, True) for i in ids]
    assert sent == [ids, ids[1:]] and len(waits.seconds) == 1
    assert connector.usage.rate_limit_waited == waits.seconds[0]


def test_a_tls_handshake_cut_short_is_retried_a_bad_certificate_is_not(
        crms: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = config(crms, tmp_path, monkeypatch)
    connector = connectors_for(loaded, Waits())["salesforce"]
    assert isinstance(connector, SalesforceConnector)
    real = requests.Session.request
    failures = iter(["EOF occurred in violation of protocol (_ssl.c:2427)",
                     "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"])

    def handshake(self: requests.Session, method: str, url: str, *args: Any,
                  **kwargs: Any) -> Any:
        if "/query" in url and (message := next(failures, None)) is not None:
            raise requests.exceptions.SSLError(message)
        return real(self, method, url, *args, **kwargs)
    monkeypatch.setattr(requests.Session, "request", handshake)
    try:
        with pytest.raises(ConnectorError, match="check ca_file"):
            connector.owners()  # EOF: retried; then the certificate: for the admin
        assert connector.owners()
        assert connector.usage.retries == 1
    finally:
        connector.close()


def test_rate_limits_spend_no_attempt_but_errors_do() -> None:
    waits = Waits()
    policy = RetryPolicy(attempts=3, sleep=waits)
    answers = iter([429] * 25 + [503, 503, 200])

    def call() -> str:
        status = next(answers)
        if status != 200:
            raise TransientError(f"HTTP {status}", status=status)
        return "ok"
    usage = ApiUsage(rate_limit_deadline=1_000)
    assert policy.call(call, usage) == "ok"
    assert usage.retries == 27 and len(waits.seconds) == 27
    assert usage.rate_limit_waited == pytest.approx(sum(waits.seconds[:25]))

    errors = iter([503] * 3)
    with pytest.raises(RetriesExhausted):
        policy.call(lambda: (_ for _ in ()).throw(TransientError("x", status=next(errors))))


def test_an_error_after_rate_limits_waits_as_a_first_error() -> None:
    """The backoff of errors grows with the errors, not with the 429s between them: one
    connection error after six rate-limit answers waits about `initial`, not the 30 s
    maximum a seventh attempt's backoff would reach (found under load: a run waited 30 s
    on top of its whole rate-limit allowance)."""
    waits = Waits()
    policy = RetryPolicy(sleep=waits)  # initial 0.5 s, maximum 30 s
    answers = iter([429] * 6 + [None, 503, 200])

    def call() -> str:
        status = next(answers)
        if status != 200:
            raise TransientError(f"HTTP {status}", status=status)
        return "ok"
    assert policy.call(call, ApiUsage(rate_limit_deadline=1_000)) == "ok"
    first_error, second_error = waits.seconds[6], waits.seconds[7]
    assert 0.5 <= first_error <= 1.0 and 1.0 <= second_error <= 1.5


def test_retry_after_is_waited_exactly_and_the_deadline_is_never_crossed() -> None:
    waits = Waits()
    policy = RetryPolicy(sleep=waits)
    usage = ApiUsage(rate_limit_deadline=25)
    calls = {"n": 0}

    def limited() -> str:
        calls["n"] += 1
        raise TransientError("HubSpot 429", status=429, retry_after=7)
    with pytest.raises(RateLimitDeadline) as stopped:
        policy.call(limited, usage)
    assert waits.seconds == [7, 7, 7]  # a fourth wait would end past 25 s
    assert calls["n"] == 4 and stopped.value.waited == 21
    # a new run (a new usage window) has its own allowance again
    usage.window().close()
    assert usage.rate_limit_waited == 0


@pytest.mark.parametrize("value, message", [
    (0, "0 is not a usable number of seconds. Fix: from 1 to 86400"),
    (100_000, "100000 is not a usable number of seconds"),
    ("soon", "rate_limit_deadline_seconds: Input should be a valid number")])
def test_the_deadline_setting_is_checked(crms: Sandboxes, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, value: Any,
                                         message: str) -> None:
    data = sandbox_config_data(crms, "sqlite:///x.db", monkeypatch)
    data["connectors"][0]["rate_limit_deadline_seconds"] = value
    with pytest.raises(ConfigError) as raised:
        parse_config(data, tmp_path / "syncer.yaml")
    assert "connectors[0] (name: hubspot).rate_limit_deadline_seconds" in str(raised.value)
    assert message in str(raised.value)
