"""A local emulator of the HubSpot API: a real HTTP server on 127.0.0.1.

Tests, the demo and the benchmarks point the real hubspot-api-client at it, so it answers
with HubSpot's shapes, errors, paging and rate limits (see shared/specs/HUBSPOT.md), and
offers introspection (`records`, `edit`, `call_counts`) that bypasses the API for tests.

    sandbox = HubSpotSandbox(World(1, 200, now)); sandbox.start()
    ...  # ConnectorSettings(base_url=sandbox.base_url, credentials=sandbox.credentials)
    sandbox.stop()
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from connectors.hubspot.sandbox_api import ROUTES, SEARCH_ENDPOINTS, HubSpotApi, handler_for
from connectors.hubspot.sandbox_http import (
    ApiFailure,
    RollingRateLimiter,
    error_response,
    json_response,
    rate_limited,
)
from connectors.hubspot.sandbox_state import InputRejected, PortalState
from connectors.sandbox_world import World

UNMATCHED_RULE = "<unmatched>"


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug logs every request at INFO; the benchmarks make hundreds of thousands."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class HubSpotSandbox:
    """The HubSpot API over one World: contacts, owners, events; private-app token auth.

    `requests_per_10s` is the app's rolling limit (190: Pro/Enterprise; None disables it),
    counted over `rate_window_seconds` so tests can use a short window. Search has its own
    per-second limit and, like HubSpot, sends no rate-limit headers. HubSpot does not
    promise Retry-After on a 429; `send_retry_after=True` adds it.
    """

    kind = "hubspot"

    def __init__(self, world: World, port: int = 0, *, token: str = "hubspot-sandbox-token",
                 requests_per_10s: int | None = 190, rate_window_seconds: float = 10.0,
                 daily_limit: int = 1_000_000, search_requests_per_second: int | None = 5,
                 search_cap: int = 10_000, send_retry_after: bool = False,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.world = world
        self.port = port
        self._token = token
        self.base_url = ""
        self.credentials: dict[str, str] = {"access_token": token}
        self.ca_file: str | None = None
        self.search_cap = search_cap
        self.send_retry_after = send_retry_after
        self.call_counts: Counter[tuple[str, str, int]] = Counter()
        self.limiter = RollingRateLimiter(requests_per_10s, rate_window_seconds, daily_limit)
        self.search_limiter = RollingRateLimiter(search_requests_per_second, 1.0, daily_limit)
        #: Writes are stamped with the wall clock, like the Salesforce sandbox, so records
        #: of one person in both CRMs order by modification time consistently.
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._portal: PortalState | None = None
        self._api: HubSpotApi | None = None
        self._build_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url_map = Map([Rule(path, methods=methods, endpoint=endpoint)
                             for path, methods, endpoint in ROUTES],
                            strict_slashes=False)

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def state(self) -> PortalState:
        """The portal's records, generated from the world on first use."""
        with self._build_lock:
            if self._portal is None:
                self._portal = PortalState(self.world, self._clock)
            return self._portal

    @property
    def api(self) -> HubSpotApi:
        state = self.state
        with self._build_lock:
            if self._api is None:
                self._api = HubSpotApi(state, lambda: self.base_url, self.search_cap)
            return self._api

    def start(self) -> None:
        """Build the records, bind 127.0.0.1:port and serve in a daemon thread."""
        if self._server is not None:
            return
        self.api  # noqa: B018 - build before the first request, not during it
        server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True,
                             request_handler=_QuietHandler)
        self._server = server
        self.port = server.server_port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name=f"hubspot-sandbox-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubSpotSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- introspection (no auth, no limits) ---------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every contact as {"id": ..., <property>: value, ...}, in id order."""
        state = self.state
        with state.lock:
            return [{"id": cid, **state.contacts[cid].properties} for cid in state.contact_ids]

    def record(self, record_id: str) -> dict[str, Any]:
        contact = self.state.snapshot(record_id)
        if contact is None:
            raise KeyError(f"no contact with id {record_id}")
        return {"id": contact.id, **contact.properties}

    def edit(self, record_id: str, field: str, value: str | None) -> None:
        """Set a property as a person in HubSpot's UI would; validation as for the API."""
        state = self.state
        try:
            clean = state.check({field: value})
            state.apply(record_id, clean)
        except InputRejected as rejected:
            raise ValueError(rejected.message) from rejected

    def owner_ids(self) -> dict[str, str]:
        """Owner id by owner email, including archived owners (for tests)."""
        return {o.email: o.id for o in self.state.owners}

    def calls(self, method: str | None = None, rule: str | None = None,
              statuses: Iterable[int] | None = None) -> int:
        """How many requests matched the given method/rule/status (None: any)."""
        wanted = set(statuses) if statuses is not None else None
        with self._counts_lock:
            return sum(n for (m, r, s), n in self.call_counts.items()
                       if (method is None or m == method) and (rule is None or r == rule)
                       and (wanted is None or s in wanted))

    # -- serving -------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        rule_name = UNMATCHED_RULE
        try:
            adapter = self._url_map.bind_to_environ(environ)
            rule, args = adapter.match(return_rule=True)
            rule_name = rule.rule
            response = self._dispatch(request, str(rule.endpoint), dict(args))
        except NotFound:
            response = error_response(ApiFailure(404, "OBJECT_NOT_FOUND",
                                                 f"No route for {request.path}"))
        except MethodNotAllowed:
            response = error_response(ApiFailure(405, "VALIDATION_ERROR",
                                                 f"{request.method} is not allowed here"))
        except HTTPException as error:  # e.g. a redirect or a malformed request
            response = error.get_response(environ)
        with self._counts_lock:
            self.call_counts[(request.method, rule_name, response.status_code)] += 1
        return response(environ, start_response)

    def _dispatch(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        denied = self._auth_failure(request)
        if denied is not None:
            return error_response(denied)
        is_search = endpoint in SEARCH_ENDPOINTS
        decision = (self.search_limiter if is_search else self.limiter).admit()
        headers = {} if is_search else decision.headers
        if not decision.allowed:
            return error_response(self._limit_failure(is_search), headers)
        try:
            status, body = handler_for(self.api, endpoint, args)(request, args)
        except ApiFailure as failure:
            return error_response(failure, headers)
        return json_response(body, status, headers)

    def _auth_failure(self, request: Request) -> ApiFailure | None:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if not header:
            return ApiFailure(401, "INVALID_AUTHENTICATION",
                              "Authentication credentials not found. This API supports "
                              "OAuth 2.0 authentication and private app access tokens.")
        if scheme.lower() != "bearer" or presented.strip() != self._token:
            # Never echo what was presented: it may be someone's real token.
            return ApiFailure(401, "INVALID_AUTHENTICATION",
                              "The access token provided is invalid or has expired.")
        return None

    def _limit_failure(self, is_search: bool) -> ApiFailure:
        limiter = self.search_limiter if is_search else self.limiter
        if limiter.exhausted_daily():
            failure = rate_limited("DAILY", "You have reached your daily limit.")
        elif is_search:
            failure = rate_limited("SECONDLY", "You have reached your secondly limit.")
        else:
            failure = rate_limited("TEN_SECONDLY_ROLLING",
                                   "You have reached your ten_secondly_rolling limit.")
        if self.send_retry_after:
            failure.headers["Retry-After"] = str(max(1, round(limiter.seconds_until_free())))
        return failure

    def now(self) -> datetime:
        """The sandbox's current time (what an edit now would stamp)."""
        return self._clock().astimezone(timezone.utc)
