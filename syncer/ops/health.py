"""The daemon's HTTP endpoint: /healthz for orchestrators, /metrics for Prometheus.

/healthz answers 200 only when the state database answers and the last finished run of
every configured connector did not fail (runs skipped because another held the lock do not
count; runs that could not reach the database count, from this process's own record of
them until the spool is replayed); under the daemon, also only once a run of every
connector has succeeded since start-up. Otherwise 503, with a JSON body saying why, so the
person paged can act without reading logs. /metrics is the Prometheus text format of
`SyncMetrics`. The server binds 127.0.0.1 unless configured otherwise and runs in daemon
threads beside the scheduler; a slow scrape never delays a sync.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from syncer.domain.failures import BadInput
from syncer.observe.logs import redact_text
from syncer.observe.metrics import COMPLETED, CONTENT_TYPE, FAILED, SyncMetrics
from syncer.store import tables
from syncer.store.repository import Store
from syncer.store.run_history import completed_since

log = structlog.get_logger(__name__)


class HealthServerError(BadInput, RuntimeError):
    """The endpoint could not start (typically: the port is taken)."""


@dataclass
class Health:
    """The verdict /healthz serves: ready, and the reasons when not."""

    ready: bool
    store: str
    #: per connector: its last finished run (id, status, finished_at), or last_run None
    connectors: dict[str, dict[str, str | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def body(self) -> dict[str, str]:
        """What the unauthenticated probe answers: ok or not, nothing more. The reasons
        (which may name the database's host and port, or a CRM's error) go to the log
        (`health.unready`), the web admin's overview and `HealthServer.last`."""
        return {"status": "ok" if self.ready else "unavailable"}

    def details(self) -> dict[str, object]:
        return {**self.body(), "store": self.store, "connectors": self.connectors,
                "problems": self.problems}


def _short(error: BaseException) -> str:
    """The first line of an error, redacted and cut: enough to act on, no credential."""
    inner = getattr(error, "orig", None) or error
    line = (str(inner).strip().splitlines() or [""])[0]
    return redact_text(f"{type(inner).__name__}: {line}")[:300]


def check_health(store: Store, connectors: Sequence[str], *, since: datetime | None = None,
                 failing: Set[str] = frozenset()) -> Health:
    """Probe the store (its schema table, so an empty new SQLite file does not pass) and
    read each connector's last finished run. `since`: each connector also needs a run that
    succeeded since then (the daemon's start-up). `failing`: connectors whose last run
    failed as this process saw it, stored or not."""
    try:
        with store.engine.connect() as connection:
            connection.execute(select(func.count()).select_from(tables.schema_version)).scalar()
        last = store.last_runs(connectors)
    except SQLAlchemyError as error:
        return Health(False, "unreachable",
                      problems=[f"state database unreachable ({_short(error)})"])
    health = Health(True, "ok")
    for name in connectors:
        run = last.get(name)
        if run is None:
            health.connectors[name] = {"last_run": None}
            continue
        health.connectors[name] = {
            "last_run": run.run_id, "status": run.status,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None}
        if run.status in FAILED:
            health.ready = False
            health.problems.append(f"connector {name}: last run {run.run_id} "
                                   f"{'failed' if run.status == 'failed' else run.status}"
                                   + (f" ({run.error[:300]})" if run.error else ""))
    for name in connectors:
        if name in failing and not any(p.startswith(f"connector {name}:")
                                       for p in health.problems):
            health.ready = False
            health.problems.append(f"connector {name}: its last run failed (not yet in "
                                   "run history)")
    if since is not None:
        try:
            _require_success(store, connectors, since, health)
        except SQLAlchemyError as error:
            return Health(False, "unreachable",
                          problems=[f"state database unreachable ({_short(error)})"])
    return health


def _require_success(store: Store, connectors: Sequence[str], since: datetime,
                     health: Health) -> None:
    """Unready until every connector has a run that succeeded since `since`."""
    for name in connectors:
        last = completed_since(store, name, sorted(COMPLETED))
        if last is None or last.finished_at is None or last.finished_at < since:
            health.ready = False
            health.problems.append(f"connector {name}: no run has succeeded since start-up "
                                   f"({since:%Y-%m-%d %H:%M:%S} UTC)")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                health = check_health(self.server.store_getter(), self.server.connectors,
                                      since=self.server.since,
                                      failing=self.server.metrics.failing())
                self.server.remember(health)
                self._send(200 if health.ready else 503, "application/json",
                           json.dumps(health.body(), sort_keys=True).encode("utf-8"))
            elif path == "/metrics":
                if self.server.before_scrape is not None:
                    self.server.before_scrape()
                self._send(200, CONTENT_TYPE, self.server.metrics.render())
            else:
                self._send(404, "text/plain", b"not found: try /healthz or /metrics\n")
        except Exception as error:  # an endpoint bug must not take the daemon down
            log.error("health.request_failed", path=path, error=type(error).__name__)
            self._send(500, "text/plain", b"internal error\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("health.request", request=self.requestline, status=args[1] if len(args) > 1
                  else None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store_getter: Callable[[], Store]
    connectors: Sequence[str]
    metrics: SyncMetrics
    before_scrape: Callable[[], None] | None
    since: datetime | None
    last: Health | None = None

    def remember(self, health: Health) -> None:
        """Keep the latest verdict; log its reasons when they change (not on every probe)."""
        previous, self.last = self.last, health
        if previous is None or previous.problems != health.problems:
            if health.ready:
                log.info("health.ready")
            else:
                log.warning("health.unready", problems=health.problems)


class HealthServer:
    """Serves /healthz and /metrics until `stop()`. Port 0 picks a free port (tests)."""

    def __init__(self, store_getter: Callable[[], Store], connectors: Sequence[str],
                 metrics: SyncMetrics, *, host: str = "127.0.0.1", port: int = 8787,
                 before_scrape: Callable[[], None] | None = None,
                 require_success_since: datetime | None = None) -> None:
        """`require_success_since`: stay unready until every connector has had a run
        succeed since then (the daemon passes its start-up time)."""
        self._since = require_success_since
        self._store_getter = store_getter
        self._connectors = list(connectors)
        self._metrics = metrics
        self._host = host
        self._port = port
        self._before_scrape = before_scrape
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def last(self) -> Health | None:
        """The verdict of the latest /healthz, with its reasons (None before the first)."""
        return self._server.last if self._server is not None else None

    @property
    def port(self) -> int:
        if self._server is None:
            raise HealthServerError("the health endpoint is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        try:
            server = _Server((self._host, self._port), _Handler)
        except OSError as error:
            raise HealthServerError(
                f"cannot serve /healthz and /metrics on {self._host}:{self._port} "
                f"({error.strerror}); set health.port to a free port or health.enabled: "
                "false") from None
        server.store_getter = self._store_getter
        server.connectors = self._connectors
        server.metrics = self._metrics
        server.before_scrape = self._before_scrape
        server.since = self._since
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="syncer-health",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        log.info("health.started", host=self._host, port=self.port)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        log.info("health.stopped")

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
