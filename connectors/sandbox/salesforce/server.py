"""A local emulator of the Salesforce REST API, served over HTTPS on 127.0.0.1.

simple-salesforce only speaks https, so the sandbox serves TLS with a throwaway certificate
authority from `trustme`; clients trust it through `ca_file` (see specs/CLIENTS.md). It
serves what syncer and common integration tools call: the OAuth refresh-token grant, SOQL
query / queryAll with cursor paging, Bulk API 2.0 query jobs (bulk.py), describe,
single-record retrieve, PATCH and POST, and
sObject Collections PATCH and POST, the Composite resource (composite.py: one call for
up to 25 subrequests), limits, with the real error shapes, the
Sforce-Limit-Info header on every response, a daily request allocation and expiring
sessions.

Tests drive it without the API too: `records()` and `record()` read what is stored,
`edit()` changes a field as a person in the UI would, `convert_lead()` and `merge()` do
what a rep's lead conversion and duplicate merge do, `lock_rows()` and `fail_next()` inject
the failures a real org produces, `call_counts` says what was called and `faults` what the
fault injection (a `FaultConfig`) did. Limits come from `SalesforceLimits` (or the shared
`SandboxLimits`). Rows are generated lazily from the world and only changed ones are kept,
so an org of a million people starts at once.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from connectors.sandbox.control import CONTROL_PREFIX, MovableClock, handle, new_token
from connectors.sandbox.faults import (
    UNSET,
    FaultConfig,
    FaultInjector,
    RequestPlan,
    SalesforceLimits,
    SandboxLimits,
    Unset,
    drop_connection,
    editor_target,
)
from connectors.sandbox.salesforce import api as sandbox_api
from connectors.sandbox.salesforce import responses
from connectors.sandbox.salesforce.bulk import BulkJobs
from connectors.sandbox.salesforce.controls import controls
from connectors.sandbox.salesforce.field_rules import RecordRejected, RequestRejected
from connectors.sandbox.salesforce.hands import OrgHands
from connectors.sandbox.salesforce.org import SalesforceOrg
from connectors.sandbox.salesforce.schema import (
    ORG_ID,
    SYNCER_ACCOUNT_FIELD_NAMES,
    SYNCER_FIELD_NAMES,
    SYNCER_STAGES,
)
from connectors.sandbox.salesforce.seed import OrgSeeder
from connectors.sandbox.salesforce.successions import OrgSuccessions
from connectors.sandbox.salesforce.tables import seed_org
from connectors.sandbox.salesforce.tls import TlsHandler, localhost_tls
from connectors.sandbox.world import IN_SALESFORCE, World

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: call_counts status of a request answered with nothing (a dropped connection).
NO_ANSWER = 0
_DATA_PATH = re.compile(r"^/services/data/v(\d+\.\d+)(?:/(.*))?$")


@dataclass
class _Failure:
    """A failure `fail_next` asked for: the next `remaining` API calls answer it."""

    remaining: int
    status: int
    error_code: str
    retry_after: float | None


class SalesforceSandbox(OrgHands):
    """Salesforce REST API emulator over one World. See the module docstring.

    Limits: `limits` (SalesforceLimits or SandboxLimits); the keywords
    `session_ttl_seconds` and `daily_api_limit` override it. `latency_seconds` is added to
    every answer; `faults` injects failures (FaultConfig). `lead_assignment_rule` gives the
    org an active lead assignment rule (new Leads go to the "Unassigned Leads" queue) that
    runs on every API insert unless the request says `Sforce-Auto-Assign: FALSE`, which is
    the REST API's default. `can_customize` False: the API user lacks "Customize
    Application", so the Tooling API refuses to create fields (INSUFFICIENT_ACCESS).
    """

    kind = "salesforce"

    def __init__(self, world: World, port: int = 0, *, client_id: str = "syncer-sandbox",
                 client_secret: str = "sandbox-secret",
                 refresh_token: str = "sandbox-refresh-token",
                 limits: SalesforceLimits | SandboxLimits | None = None,
                 faults: FaultConfig | None = None,
                 session_ttl_seconds: float | Literal[Unset.UNSET] | None = UNSET,
                 daily_api_limit: int | Literal[Unset.UNSET] = UNSET,
                 latency_seconds: float = 0.0,
                 clock: Callable[[], datetime] | None = None,
                 lead_assignment_rule: bool = False, can_customize: bool = True) -> None:
        self.world = world
        self._port = port
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        base = limits.salesforce if isinstance(limits, SandboxLimits) else \
            limits or SalesforceLimits()
        if session_ttl_seconds is not UNSET:
            base = replace(base, session_ttl_seconds=session_ttl_seconds)
        if daily_api_limit is not UNSET:
            base = replace(base, daily=daily_api_limit)
        self.limits = base
        self.session_ttl_seconds = self.limits.session_ttl_seconds
        self.daily_api_limit = self.limits.daily
        self.latency_seconds = latency_seconds
        self.faults = FaultInjector(faults, self.kind)
        self.clock = MovableClock(clock)  # the control API moves it forward
        #: what `X-Sandbox-Control` must carry for the control API (connectors/sandbox/control.py)
        self.control_token = new_token()
        self.base_url = ""
        self.ca_file: str | None = None
        self.credentials: dict[str, str] = {
            "client_id": client_id, "client_secret": client_secret,
            "refresh_token": refresh_token}
        self.call_counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self.api_used = 0
        self.org = SalesforceOrg()
        self.seeder: OrgSeeder = seed_org(world, self.org)
        self.successions = OrgSuccessions(self.org, self.seeder)
        self._sessions: dict[str, float] = {}
        self._failures: list[_Failure] = []
        self._state_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.api = sandbox_api.RestApi(self.org, self.clock,
                                       lambda: (self.api_used, self.daily_api_limit),
                                       self.limits)
        # A world without syncer's fields: Lead and Contact lack them until the Tooling API
        # creates them; `can_customize` False: the API user may not (INSUFFICIENT_ACCESS).
        if not world.syncer_fields:
            self.org.absent = {(obj, name.lower()) for obj in ("Lead", "Contact")
                               for name in SYNCER_FIELD_NAMES} | {
                ("Account", name.lower()) for name in SYNCER_ACCOUNT_FIELD_NAMES}
        self.api.tooling.can_customize = can_customize
        self.api.bulk.user = lambda: self.seeder.integration_user
        if lead_assignment_rule:  # an org whose active rule routes new Leads to the queue
            self.api.assignment_queue = self.seeder.queue

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Serve in a background thread; sets base_url and ca_file."""
        if self._server is not None:
            return
        self.faults.restart()
        context, self.ca_file = localhost_tls("salesforce-sandbox-ca-")
        self._server = make_server("127.0.0.1", self._port, self._wsgi, threaded=True,
                                   request_handler=TlsHandler)
        self._server.ssl_context = context  # https in the environ; TlsHandler wraps
        self.base_url = f"https://127.0.0.1:{self._server.server_port}"
        server = self._server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                                        name="salesforce-sandbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wait for the server thread, remove the CA file."""
        self.faults.stop()  # wake requests hanging in a latency or timeout fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.ca_file and os.path.exists(self.ca_file):
            os.remove(self.ca_file)
        self.ca_file = None

    def __enter__(self) -> SalesforceSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def bulk(self) -> BulkJobs:
        """Bulk API 2.0 query jobs: the job table and the test controls (hold, fail)."""
        return self.api.bulk

    # -- fault injection (no API, no limits) -------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 503,
                  error_code: str = "SERVER_UNAVAILABLE",
                  retry_after: float | None = None) -> None:
        """The next `count` authenticated API calls answer `status` with `error_code`."""
        with self._state_lock:
            self._failures.append(_Failure(count, status, error_code, retry_after))

    def expire_sessions(self) -> None:
        """Every issued session id becomes invalid (as after a password reset)."""
        with self._state_lock:
            self._sessions.clear()

    # -- HTTP ----------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse
              ) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(CONTROL_PREFIX):  # a tester's hand, not API traffic
            control = handle(self, self.control_token, self.clock, request, controls(self))
            return control(environ, start_response)
        plan = self.faults.plan(request.method, _route_of(request.path))
        environ[sandbox_api.PLAN_KEY] = plan
        self._delay(plan, environ)
        route, response = self._dispatch(request, plan)
        with self._state_lock:
            response.headers["Sforce-Limit-Info"] = (
                f"api-usage={self.api_used}/{self.daily_api_limit}")
            self.call_counts[(request.method, route, response.status_code)] += 1
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _delay(self, plan: RequestPlan, environ: WSGIEnvironment) -> None:
        """Latency, a hung request or a dropped connection, as the plan says."""
        pause = self.latency_seconds + plan.latency_seconds
        if pause:
            self.faults.sleep(pause)
        if plan.action == "drop":
            plan.record("drop")
            with self._state_lock:
                self.call_counts[(plan.method, plan.endpoint, NO_ANSWER)] += 1
            drop_connection(environ)
        if plan.action == "timeout":
            plan.record("timeout", detail=f"{self.faults.config.timeout_seconds:g} s")
            self.faults.sleep(self.faults.config.timeout_seconds)

    def _dispatch(self, request: Request, plan: RequestPlan) -> tuple[str, Response]:
        path = request.path
        if path.rstrip("/") == "/services/oauth2/token":
            if request.method != "POST":
                return "oauth2/token", responses.method_not_allowed(request.method, "POST")
            if plan.action == "error":  # sign-in can fail too; API limits do not apply
                plan.record("error_5xx", detail=str(plan.error_status))
                return "oauth2/token", _server_error(plan.error_status)
            return "oauth2/token", self._token(request)
        if path.rstrip("/") == "/services/data":
            return "versions", responses.json_response(responses.versions())
        match = _DATA_PATH.match(path)
        if match is None:
            return "unknown", responses.not_found()
        version, rest = match.group(1), (match.group(2) or "").strip("/")
        route = responses.route_name(rest)
        refusal = self._admit(request, plan)
        if refusal is not None:
            return route, refusal
        if plan.editor:
            self._simulate_editor(plan)
        return route, self.api.handle(request, version, rest)

    def _admit(self, request: Request, plan: RequestPlan) -> Response | None:
        """Session check, then the daily allocation, then any injected failure."""
        header = request.headers.get("Authorization", "")
        token = header.split(" ", 1)[1].strip() if " " in header else ""
        with self._state_lock:
            issued = self._sessions.get(token)
            ttl = self.session_ttl_seconds
            if issued is not None and plan.action == "session_expiry":
                del self._sessions[token]
                plan.record("session_expiry")
                issued = None
            if issued is None or (ttl is not None and time.monotonic() - issued > ttl):
                return responses.error_response(401, "INVALID_SESSION_ID",
                                                  "Session expired or invalid")
            if plan.action == "burst":
                plan.record("burst_429", detail="403 ConcurrentPerOrgLongTxn")
                return responses.error_response(403, "REQUEST_LIMIT_EXCEEDED",
                                                  "ConcurrentPerOrgLongTxn Limit exceeded.")
            if self.api_used >= self.daily_api_limit:
                return responses.error_response(403, "REQUEST_LIMIT_EXCEEDED",
                                                  "TotalRequests Limit exceeded.")
            self.api_used += 1
            if plan.action == "error":
                plan.record("error_5xx", detail=str(plan.error_status))
                return _server_error(plan.error_status)
            if self._failures:
                failure = self._failures[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.pop(0)
                response = responses.error_response(
                    failure.status, failure.error_code, "The server is temporarily unavailable"
                    if failure.status >= 500 else "Request refused by the sandbox")
                if failure.retry_after is not None:
                    response.headers["Retry-After"] = str(int(failure.retry_after))
                return response
        return None

    def _token(self, request: Request) -> Response:
        """POST /services/oauth2/token: refresh_token and client_credentials grants."""
        form = request.form
        grant = form.get("grant_type", "")
        if grant not in ("refresh_token", "client_credentials"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if not hmac.compare_digest(form.get("client_id", ""), self._client_id):
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(form.get("client_secret", ""), self._client_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "refresh_token" and not hmac.compare_digest(
                form.get("refresh_token", ""), self._refresh_token):
            return _oauth_error("invalid_grant", "expired access/refresh token")
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        with self._state_lock:
            self._sessions[token] = time.monotonic()
        issued_at = str(int(time.time() * 1000))
        identity = f"https://login.salesforce.com/id/{ORG_ID}/{self.seeder.integration_user}"
        digest = hmac.new(self._client_secret.encode(), (identity + issued_at).encode(),
                          hashlib.sha256).digest()
        return responses.json_response({
            "access_token": token, "instance_url": self.base_url, "id": identity,
            "token_type": "Bearer", "issued_at": issued_at,
            "signature": base64.b64encode(digest).decode(), "scope": "api refresh_token"})


    def _simulate_editor(self, plan: RequestPlan) -> None:
        """A colleague changes one Lead's or Contact's owner or stage in Salesforce."""
        rng, org = plan.rng, self.org
        record_id = editor_target(rng, list(self.api.recent_writes), self.world,
                                  IN_SALESFORCE, self.seeder.record_id)
        if record_id is None:
            return
        if rng.random() < 0.5:
            field = "OwnerId"
            value = self.seeder.active_reps[rng.randrange(len(self.seeder.active_reps))]
        else:
            field, value = "Syncer_Stage__c", SYNCER_STAGES[rng.randrange(len(SYNCER_STAGES))]
        with org.lock:
            found = org.lookup(record_id)
            if found is None or found[0].name not in ("Lead", "Contact"):
                return
            before = found[1].get(field)
            try:
                staged = org.prepare(found[0], record_id, {field: value}, check_lock=False)
            except (RecordRejected, RequestRejected):
                return  # e.g. a converted lead: the UI would refuse too
            org.apply(staged, self.clock())
        plan.record("editor", record_id, f"{field}: {before} -> {value}")


def _route_of(path: str) -> str:
    """The route name of a path (for fault records, before the request is handled)."""
    if path.rstrip("/") == "/services/oauth2/token":
        return "oauth2/token"
    match = _DATA_PATH.match(path)
    if match is None:
        return "versions" if path.rstrip("/") == "/services/data" else "unknown"
    return responses.route_name((match.group(2) or "").strip("/"))


def _server_error(status: int) -> Response:
    """A 5xx as Salesforce answers it (an injected fault)."""
    if status == 503:
        return responses.error_response(503, "SERVER_UNAVAILABLE",
                                          "Server temporarily unavailable; retry later")
    return responses.error_response(status, "UNKNOWN_EXCEPTION",
                                      "An unexpected error occurred. Please include this "
                                      "ErrorId if you contact support: 1234567890-12345 "
                                      "(-1234567890)")


def _oauth_error(code: str, description: str) -> Response:
    return Response(json.dumps({"error": code, "error_description": description}),
                    status=400, mimetype="application/json")
