"""A local emulator of the Salesforce REST API, served over HTTPS on 127.0.0.1.

simple-salesforce only speaks https, so the sandbox serves TLS with a throwaway certificate
authority from `trustme`; clients trust it through `ca_file` (see specs/CLIENTS.md). It
serves what syncer and common integration tools call: the OAuth refresh-token grant, SOQL
query / queryAll with cursor paging, describe, single-record PATCH and sObject Collections
PATCH, limits, with the real error shapes, the Sforce-Limit-Info header on every response,
a daily request allocation and expiring sessions.

Tests drive it without the API too: `records()` and `record()` read what is stored,
`edit()` changes a field as a person in the UI would, `lock_rows()` and `fail_next()` inject
the failures a real org produces, and `call_counts` says what was called.
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
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import trustme
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from connectors.salesforce import sandbox_api
from connectors.salesforce.sandbox_org import RecordRejected, RequestRejected, SalesforceOrg
from connectors.salesforce.sandbox_schema import make_id
from connectors.salesforce.sandbox_seed import OrgSeeder, seed_org
from connectors.sandbox_world import World

ORG_ID = make_id("00D", 1)
_DATA_PATH = re.compile(r"^/services/data/v(\d+\.\d+)(?:/(.*))?$")


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: the sandbox serves thousands of them in a run."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@dataclass
class _Failure:
    """A failure `fail_next` asked for: the next `remaining` API calls answer it."""

    remaining: int
    status: int
    error_code: str
    retry_after: float | None


class SalesforceSandbox:
    """Salesforce REST API emulator over one World. See the module docstring."""

    kind = "salesforce"

    def __init__(self, world: World, port: int = 0, *, client_id: str = "syncer-sandbox",
                 client_secret: str = "sandbox-secret",
                 refresh_token: str = "sandbox-refresh-token",
                 session_ttl_seconds: float | None = None, daily_api_limit: int = 100_000,
                 latency_seconds: float = 0.0,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.world = world
        self._port = port
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.session_ttl_seconds = session_ttl_seconds
        self.daily_api_limit = daily_api_limit
        self.latency_seconds = latency_seconds
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.base_url = ""
        self.ca_file: str | None = None
        self.credentials: dict[str, str] = {
            "client_id": client_id, "client_secret": client_secret,
            "refresh_token": refresh_token}
        self.call_counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self.api_used = 0
        self.org = SalesforceOrg()
        self.seeder: OrgSeeder = seed_org(world, self.org)
        self._sessions: dict[str, float] = {}
        self._failures: list[_Failure] = []
        self._state_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.api = sandbox_api.RestApi(self.org, self.clock,
                                       lambda: (self.api_used, self.daily_api_limit))

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Serve in a background thread; sets base_url and ca_file."""
        if self._server is not None:
            return
        authority = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1").configure_cert(context)
        handle, path = tempfile.mkstemp(prefix="salesforce-sandbox-ca-", suffix=".pem")
        os.close(handle)
        authority.cert_pem.write_to_path(path)
        self.ca_file = path
        self._server = make_server("127.0.0.1", self._port, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler, ssl_context=context)
        self.base_url = f"https://127.0.0.1:{self._server.server_port}"
        server = self._server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                                        name="salesforce-sandbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wait for the server thread, remove the CA file."""
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

    # -- introspection and fault injection (no API, no limits) --------------------------

    def records(self, *, include_converted: bool = False) -> list[dict[str, Any]]:
        """Every Lead and Contact with all fields as the API renders them, type under
        "type". Converted leads (locked history rows) only when asked for."""
        with self.org.lock:
            return [self.org.rendered(row["Id"])
                    for name in ("Lead", "Contact") for row in self.org.rows(name)
                    if include_converted or not row.get("IsConverted")]

    def record(self, record_id: str) -> dict[str, Any]:
        """One row of any type by id (15 or 18 chars); KeyError if there is none."""
        with self.org.lock:
            return self.org.rendered(record_id)

    def edit(self, record_id: str, field: str, value: str | None) -> None:
        """Change a field as a person in the UI would; ValueError if the UI would refuse."""
        with self.org.lock:
            found = self.org.lookup(record_id)
            if found is None:
                raise KeyError(record_id)
            try:
                staged = self.org.prepare(found[0], record_id, {field: value},
                                          check_lock=False)
            except (RecordRejected, RequestRejected) as error:
                raise ValueError(str(error)) from error
            self.org.apply(staged, self.clock())

    def lock_rows(self, *record_ids: str) -> None:
        """Writes to these records answer UNABLE_TO_LOCK_ROW until unlocked."""
        with self.org.lock:
            self.org.locked.update(record_ids)

    def unlock_rows(self, *record_ids: str) -> None:
        with self.org.lock:
            self.org.locked.difference_update(record_ids)

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

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        route, response = self._dispatch(request)
        with self._state_lock:
            response.headers["Sforce-Limit-Info"] = (
                f"api-usage={self.api_used}/{self.daily_api_limit}")
            self.call_counts[(request.method, route, response.status_code)] += 1
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _dispatch(self, request: Request) -> tuple[str, Response]:
        path = request.path
        if path.rstrip("/") == "/services/oauth2/token":
            if request.method != "POST":
                return "oauth2/token", sandbox_api.method_not_allowed(request.method, "POST")
            return "oauth2/token", self._token(request)
        if path.rstrip("/") == "/services/data":
            return "versions", sandbox_api.json_response(sandbox_api.versions())
        match = _DATA_PATH.match(path)
        if match is None:
            return "unknown", sandbox_api.not_found()
        version, rest = match.group(1), (match.group(2) or "").strip("/")
        route = sandbox_api.route_name(rest)
        refusal = self._admit(request)
        if refusal is not None:
            return route, refusal
        return route, self.api.handle(request, version, rest)

    def _admit(self, request: Request) -> Response | None:
        """Session check, then the daily allocation, then any injected failure."""
        header = request.headers.get("Authorization", "")
        token = header.split(" ", 1)[1].strip() if " " in header else ""
        with self._state_lock:
            issued = self._sessions.get(token)
            ttl = self.session_ttl_seconds
            if issued is None or (ttl is not None and time.monotonic() - issued > ttl):
                return sandbox_api.error_response(401, "INVALID_SESSION_ID",
                                                  "Session expired or invalid")
            if self.api_used >= self.daily_api_limit:
                return sandbox_api.error_response(403, "REQUEST_LIMIT_EXCEEDED",
                                                  "TotalRequests Limit exceeded.")
            self.api_used += 1
            if self._failures:
                failure = self._failures[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.pop(0)
                response = sandbox_api.error_response(
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
        return sandbox_api.json_response({
            "access_token": token, "instance_url": self.base_url, "id": identity,
            "token_type": "Bearer", "issued_at": issued_at,
            "signature": base64.b64encode(digest).decode(), "scope": "api refresh_token"})


def _oauth_error(code: str, description: str) -> Response:
    return Response(json.dumps({"error": code, "error_description": description}),
                    status=400, mimetype="application/json")
