"""Limits and fault injection shared by the sandbox CRMs.

`SandboxLimits` says how much each sandbox lets a client do and `FaultConfig` what goes
wrong on purpose (both in settings.py, re-exported here); this module injects the faults.

Faults are reproducible: request number n of a sandbox decides its faults from its own
random stream seeded by (fault seed, sandbox kind, n), so the same seed and the same
request sequence give the same faults, whatever the timing. Every fault injected is
recorded (`FaultInjector.injected`) so tests can assert on what happened.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from connectors.sandbox.settings import (
    HUBSPOT_TIERS,
    UNSET,
    FaultConfig,
    HubSpotLimits,
    SalesforceLimits,
    SandboxConfigError,
    SandboxLimits,
    Unset,
    load_sandbox_file,
    parse_burst,
)

if TYPE_CHECKING:
    from connectors.sandbox.world import World

__all__ = [
    "HUBSPOT_TIERS", "UNSET", "ConnectionDropped", "FaultConfig", "FaultInjector",
    "HubSpotLimits", "InjectedFault", "RequestPlan", "SalesforceLimits", "SandboxConfigError",
    "SandboxLimits", "Unset", "drop_connection", "editor_target", "load_sandbox_file",
    "parse_burst",
]


class ConnectionDropped(ConnectionAbortedError):
    """Raised from a WSGI app to end a request without an answer (werkzeug treats a
    ConnectionError as a dropped connection and logs nothing)."""


def drop_connection(environ: Mapping[str, object]) -> NoReturn:
    """Close the request's socket without answering, as a failing load balancer does."""
    sock = environ.get("werkzeug.socket")  # the dev server's connection
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionDropped("connection dropped by the sandbox's fault injection")


@dataclass(frozen=True)
class InjectedFault:
    """One fault the sandbox injected: request number, kind, where, and on which record."""

    seq: int
    kind: str
    method: str
    endpoint: str
    record_id: str | None = None
    detail: str = ""


class RequestPlan:
    """The faults decided for one request; per-record and editor choices draw from `rng`
    in the order the sandbox asks, so they too follow from the seed."""

    def __init__(self, injector: FaultInjector, seq: int, method: str, endpoint: str) -> None:
        self.injector = injector
        self.seq = seq
        self.method = method
        self.endpoint = endpoint
        self._rng: random.Random | None = None
        self.latency_seconds = 0.0
        self.action: str | None = None  # drop, timeout, burst, error, session_expiry
        self.error_status = 0
        self.editor = False

    @property
    def rng(self) -> random.Random:
        """This request's own random stream (made on first use: most plans never draw)."""
        if self._rng is None:
            config = self.injector.config
            self._rng = random.Random(f"{config.seed}:{self.injector.sandbox_kind}:{self.seq}")
        return self._rng

    def record(self, kind: str, record_id: str | None = None, detail: str = "") -> None:
        self.injector.log(InjectedFault(self.seq, kind, self.method, self.endpoint,
                                        record_id, detail))

    def record_fault(self, record_id: str) -> str | None:
        """For one record of a write: None, "lock" or "validation" (and logs it)."""
        config = self.injector.config
        if not config.record_failure_rate or self.rng.random() >= config.record_failure_rate:
            return None
        kind = "lock" if self.rng.random() < config.record_lock_share else "validation"
        self.record("record_" + kind, record_id)
        return kind


class FaultInjector:
    """Decides and records the faults of one sandbox. Thread-safe."""

    def __init__(self, config: FaultConfig | None, sandbox_kind: str,
                 log_size: int = 10_000) -> None:
        self.config = config or FaultConfig()
        self.sandbox_kind = sandbox_kind
        self._seq = 0
        self._lock = threading.Lock()
        self._log: deque[InjectedFault] = deque(maxlen=log_size)
        self._counts: Counter[str] = Counter()
        self._stopping = threading.Event()

    def plan(self, method: str, endpoint: str) -> RequestPlan:
        """Number this request and decide its faults."""
        with self._lock:
            seq = self._seq
            self._seq += 1
        config = self.config
        plan = RequestPlan(self, seq, method, endpoint)
        if not config.enabled:
            return plan
        rng = plan.rng
        plan.latency_seconds = (config.latency_ms + config.latency_jitter_ms * rng.random()) \
            / 1000
        roll = rng.random()
        if config.burst_length and seq % config.burst_every >= \
                config.burst_every - config.burst_length:
            plan.action = "burst"  # a burst window is exact, whatever else would happen
        elif roll < config.drop_rate:
            plan.action = "drop"
        elif roll < config.drop_rate + config.timeout_rate:
            plan.action = "timeout"
        elif roll < config.drop_rate + config.timeout_rate + config.error_rate:
            plan.action = "error"
            plan.error_status = rng.choice((500, 502, 503, 504))
        elif rng.random() < config.session_expiry_rate:
            plan.action = "session_expiry"
        plan.editor = rng.random() < config.editor_rate
        return plan

    def log(self, fault: InjectedFault) -> None:
        with self._lock:
            self._log.append(fault)
            self._counts[fault.kind] += 1

    @property
    def requests(self) -> int:
        """How many requests have been numbered so far."""
        with self._lock:
            return self._seq

    def injected(self, kind: str | None = None) -> list[InjectedFault]:
        """The faults injected so far (the latest 10,000), optionally of one kind."""
        with self._lock:
            return [f for f in self._log if kind is None or f.kind == kind]

    def counts(self) -> Counter[str]:
        """How many faults of each kind were injected since the start (never trimmed)."""
        with self._lock:
            return Counter(self._counts)

    def sleep(self, seconds: float) -> bool:
        """Wait, but wake at once when the sandbox stops; True if it is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    def stop(self) -> None:
        """Wake every request sleeping in a latency or timeout fault."""
        self._stopping.set()

    def restart(self) -> None:
        self._stopping.clear()



def editor_target(rng: random.Random, recent: Sequence[str], world: World, flag: int,
                  record_id_for: Callable[[int], str]) -> str | None:
    """The record a simulated colleague edits: half the time one the API wrote recently
    (the conflict a sync must handle), otherwise a random person present in this CRM
    (`flag`: IN_HUBSPOT or IN_SALESFORCE), found within 32 draws."""
    if recent and rng.random() < 0.5:
        return recent[rng.randrange(len(recent))]
    for _ in range(32):
        index = rng.randrange(world.size) if world.size else 0
        if world.size and world.flags(index) & flag:
            return record_id_for(index)
    return None
