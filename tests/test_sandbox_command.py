"""`syncer sandbox` as a user runs it: a real process, real clients, faults, Ctrl-C."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import hubspot.crm.contacts as contacts_pkg
import pytest
import requests
from hubspot.crm.contacts.exceptions import ApiException
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.sandbox.faults import FaultConfig, FaultInjector

FLAGS = ["--fault-seed", "7", "--fault-5xx-rate", "0.2", "--fault-429-burst", "5:1"]
FAULTS = FaultConfig(seed=7, error_rate=0.2, burst_every=5, burst_length=1)


class Lines(threading.Thread):
    """Reads a process's JSON lines into a queue (select() on a buffered text pipe would
    miss lines already read ahead into the buffer)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.start()

    def run(self) -> None:
        for line in self.stream:
            self.queue.put(json.loads(line))
        self.queue.put(None)

    def until(self, event: str, seconds: float) -> list[dict[str, Any]]:
        """The lines up to and including the one whose event is `event`."""
        deadline = time.monotonic() + seconds
        lines: list[dict[str, Any]] = []
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            assert line is not None, f"no '{event}' line in time; got {lines}"
            lines.append(line)
            if line.get("event") == event:
                return lines


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], Lines, list[dict[str, Any]]]]:
    with subprocess.Popen(
            [sys.executable, "-m", "syncer.cli", "sandbox", "--contacts", "200", "--seed", "3",
             *FLAGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        output = Lines(process.stdout)
        try:
            yield process, output, output.until("ready", 300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            output.join(timeout=10)  # it reads to the end before the pipe is closed


def expected_statuses(kind: str, count: int) -> list[str]:
    """What the fault plan of a fresh sandbox says its first requests get."""
    injector = FaultInjector(FAULTS, kind)
    return [plan.action or "ok" for plan in (injector.plan("GET", "x") for _ in range(count))]


def test_sandbox_command_serves_both_crms_with_faults_and_stops_cleanly(
        served: tuple[subprocess.Popen[str], Lines, list[dict[str, Any]]]) -> None:
    process, output, lines = served
    endpoints = {line["kind"]: line for line in lines if "kind" in line}
    ready = lines[-1]
    assert ready["people"] == 200 and ready["faults"]["error_rate"] == 0.2
    assert ready["faults"]["burst_every"] == 5 and ready["faults"]["seed"] == 7

    hubspot = endpoints["hubspot"]
    configuration = contacts_pkg.Configuration(host=hubspot["base_url"])
    configuration.access_token = hubspot["credentials"]["access_token"]
    configuration.client_side_validation = True
    configuration.retries = False
    api = contacts_pkg.BasicApi(api_client=contacts_pkg.ApiClient(configuration))
    seen: list[str] = []
    for _ in range(12):
        try:
            page = api.get_page(limit=5, properties=["email"])
            assert len(page.results) == 5 and all("@" in c.properties["email"]
                                                  for c in page.results)
            seen.append("ok")
        except ApiException as error:
            seen.append("burst" if error.status == 429 else "error")
            assert json.loads(error.body)["correlationId"]
    api.api_client.rest_client.pool_manager.clear()
    assert seen == expected_statuses("hubspot", 12)
    assert "burst" in seen and "error" in seen

    salesforce = endpoints["salesforce"]
    session = requests.Session()
    session.verify = salesforce["ca_file"]
    session.trust_env = False
    plan = expected_statuses("salesforce", 10)
    outcomes, expected, token = [], [], None
    for number in range(10):
        if token is None:  # sign-in: a 5xx can hit it, the concurrency limit cannot
            expected.append("ok" if plan[number] == "burst" else plan[number])
            response = session.post(salesforce["base_url"] + "/services/oauth2/token",
                                    data={"grant_type": "refresh_token",
                                          **salesforce["credentials"]})
            outcomes.append("ok" if response.status_code == 200 else "error")
            token = response.json()["access_token"] if response.ok else None
            continue
        expected.append(plan[number])
        sf = Salesforce(instance_url=salesforce["base_url"], session_id=token,
                        version="59.0", session=session)
        try:
            assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 9
            outcomes.append("ok")
        except SalesforceError as error:
            outcomes.append("burst" if error.status == 403 else "error")
    session.close()
    assert outcomes == expected and "burst" in outcomes

    process.send_signal(signal.SIGINT)
    stopped = output.until("stopped", 300)[-1]
    assert process.wait(timeout=30) == 0
    injected = stopped["faults_injected"]
    assert injected["hubspot"] == {"burst_429": seen.count("burst"),
                                   "error_5xx": seen.count("error")}
    assert sum(injected["salesforce"].values()) == 10 - outcomes.count("ok")
    assert process.stderr is not None and "Traceback" not in process.stderr.read()


def test_sandbox_command_rejects_bad_fault_flags() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncer.cli", "sandbox", "--contacts", "10",
         "--fault-429-burst", "often"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--fault-429-burst: 'often' is not EVERY:LENGTH" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
