"""A local emulator of the HubSpot API: a real HTTP server on 127.0.0.1.

Tests, the demo and the benchmarks point the real hubspot-api-client at it, so it answers
with HubSpot's shapes, errors, paging and rate limits (see shared/specs/HUBSPOT.md), and
offers introspection (`records`, `edit`, `merge`, `call_counts`, `faults`) that bypasses
the API.
Limits come from a `HubSpotLimits` (or the shared `SandboxLimits`); faults from a
`FaultConfig` (connectors/sandbox/faults.py). Contacts are generated lazily from the world
and only changed ones are kept, so a portal of a million contacts starts at once.

    sandbox = HubSpotSandbox(World(1, 200, now)); sandbox.start()
    ...  # ConnectorSettings(base_url=sandbox.base_url, credentials=sandbox.credentials)
    sandbox.stop()
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from connectors.sandbox.control import CONTROL_PREFIX, MovableClock, handle, new_token
from connectors.sandbox.faults import (
    UNSET,
    FaultConfig,
    FaultInjector,
    HubSpotLimits,
    RequestPlan,
    SandboxLimits,
    Unset,
    drop_connection,
    editor_target,
)
from connectors.sandbox.hubspot.api import ROUTES, SEARCH_ENDPOINTS, HubSpotApi, handler_for
from connectors.sandbox.hubspot.http import (
    PLAN_KEY,
    ApiFailure,
    DailyBudget,
    RollingRateLimiter,
    error_response,
    json_response,
    rate_limited,
    server_error,
)
from connectors.sandbox.hubspot.identity import MERGE_MODES, MergeMode, merge_contacts
from connectors.sandbox.hubspot.schema import LIFECYCLE_STAGES
from connectors.sandbox.hubspot.state import Contact, PortalState, contact_id_for
from connectors.sandbox.hubspot.validation import InputRejected
from connectors.sandbox.settings import settings_from
from connectors.sandbox.world import IN_HUBSPOT, World

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

UNMATCHED_RULE = "<unmatched>"
#: call_counts status of a request answered with nothing (a dropped connection).
NO_ANSWER = 0


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug logs every request at INFO; the benchmarks make hundreds of thousands."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _resolve_limits(limits: HubSpotLimits | SandboxLimits | None,
                    **overrides: object) -> HubSpotLimits:
    """The limits object, then any keyword given explicitly (the older constructor API)."""
    base = limits.hubspot if isinstance(limits, SandboxLimits) else limits or HubSpotLimits()
    given = {name: value for name, value in overrides.items() if value is not UNSET}
    return settings_from(HubSpotLimits, {**asdict(base), **given})


class HubSpotSandbox:
    """The HubSpot API over one World: contacts, owners, events; private-app token auth.

    Limits: `limits` (a HubSpotLimits, e.g. `HubSpotLimits.for_tier("starter")`, or a
    SandboxLimits) and, for compatibility, the keywords `requests_per_10s` (None disables
    it), `rate_window_seconds`, `daily_limit`, `search_requests_per_second`, `search_cap`
    and `send_retry_after` (no longer changes anything: every 429 carries an exact
    Retry-After), which override it. Search has its own per-second limit and, like
    HubSpot, sends no rate-limit headers. `clock` stamps writes and drives the rate
    windows and the daily reset (midnight in `limits.time_zone`). `faults` injects
    failures (FaultConfig).
    `merge_mode` is "new_record" (a merge makes a new contact with a new id that both old
    ids lead to, as HubSpot's changelog announces; the default) or "keep_primary" (the
    primary keeps its id, as HubSpot merges used to); see
    sandbox_identity for the creation and merge rules.
    """

    kind = "hubspot"

    def __init__(self, world: World, port: int = 0, *, token: str = "hubspot-sandbox-token",
                 limits: HubSpotLimits | SandboxLimits | None = None,
                 faults: FaultConfig | None = None,
                 requests_per_10s: int | Literal[Unset.UNSET] | None = UNSET,
                 rate_window_seconds: float | Literal[Unset.UNSET] = UNSET,
                 daily_limit: int | Literal[Unset.UNSET] = UNSET,
                 search_requests_per_second: int | Literal[Unset.UNSET] | None = UNSET,
                 search_cap: int | Literal[Unset.UNSET] = UNSET,
                 send_retry_after: bool | Literal[Unset.UNSET] = UNSET,
                 clock: Callable[[], datetime] | None = None,
                 merge_mode: MergeMode = "new_record") -> None:
        self.world = world
        self.port = port
        self._token = token
        self.base_url = ""
        self.credentials: dict[str, str] = {"access_token": token}
        self.ca_file: str | None = None
        self.limits = _resolve_limits(
            limits, requests_per_10s=requests_per_10s, window_seconds=rate_window_seconds,
            daily=daily_limit, search_per_second=search_requests_per_second,
            search_cap=search_cap, send_retry_after=send_retry_after)
        self.call_counts: Counter[tuple[str, str, int]] = Counter()
        self.faults = FaultInjector(faults, self.kind)
        #: Writes are stamped with the wall clock, like the Salesforce sandbox, so records
        #: of one person in both CRMs order by modification time consistently. The rate
        #: windows and the daily reset read the same clock, so a test can move it.
        self.clock = MovableClock(clock)  # the control API moves it forward
        self._clock = self.clock
        #: what `X-Sandbox-Control` must carry for the control API (connectors/sandbox/control.py)
        self.control_token = new_token()
        budget = DailyBudget(self.limits.daily, self.now, self.limits.time_zone)
        self.limiter = RollingRateLimiter(self.limits.requests_per_10s,
                                          self.limits.window_seconds, budget, self.now,
                                          nominal=self.limits.nominal_per_10s)
        self.search_limiter = RollingRateLimiter(self.limits.search_per_second, 1.0, budget,
                                                 self.now)
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {', '.join(MERGE_MODES)}, "
                             f"got {merge_mode!r}")
        #: keep_primary: a merge keeps the primary's id; new_record: it makes a new contact
        #: (HubSpot's newer behaviour). See sandbox_identity.
        self.merge_mode: MergeMode = merge_mode
        self._portal: PortalState | None = None
        self._api: HubSpotApi | None = None
        self._build_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url_map = Map([Rule(path, methods=methods, endpoint=endpoint)
                             for path, methods, endpoint in ROUTES],
                            strict_slashes=False)

    @property
    def search_cap(self) -> int:
        return self.limits.search_cap

    @property
    def send_retry_after(self) -> bool:
        return self.limits.send_retry_after

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
                self._api = HubSpotApi(state, lambda: self.base_url, self.limits,
                                       self.merge_mode)
            return self._api

    def start(self) -> None:
        """Bind 127.0.0.1:port and serve in a daemon thread (records are generated lazily,
        so this is immediate for any size)."""
        if self._server is not None:
            return
        self.api  # noqa: B018 - build before the first request, not during it
        self.faults.restart()
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
        self.faults.stop()  # wake requests hanging in a latency or timeout fault
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
    def iter_records(self) -> Iterator[dict[str, str | None]]:
        """Every contact as {"id": ..., <property>: value, ...}, in id order, lazily."""
        for contact in self.state.iter_contacts():
            yield {"id": contact.id, **contact.properties}

    def records(self) -> list[dict[str, str | None]]:
        """Every contact as {"id": ..., <property>: value, ...}, in id order (small worlds;
        use iter_records at scale)."""
        return list(self.iter_records())

    def record(self, record_id: str) -> dict[str, str | None]:
        contact = self.state.snapshot(record_id)
        if contact is None:
            raise KeyError(f"no contact with id {record_id}")
        return {"id": contact.id, **contact.properties}

    def changed_records(self) -> list[dict[str, str | None]]:
        """Only the contacts changed since generation (API writes, edits, the editor)."""
        with self.state.lock:
            changed = sorted(self.state.overlay.values(), key=lambda c: int(c.id))
            return [{"id": c.id, **c.properties} for c in changed]

    def edit(self, record_id: str, field: str, value: str | None) -> None:
        """Set a property as a person in HubSpot's UI would; validation as for the API."""
        state = self.state
        try:
            clean = state.check({field: value})
            state.apply(record_id, clean, source="CRM_UI")
        except InputRejected as rejected:
            raise ValueError(rejected.message) from rejected

    def merge(self, primary_id: str, merged_id: str) -> str:
        """Merge one contact into another as a person in HubSpot's UI would; the id of the
        surviving contact (the primary's, or a new one under merge_mode "new_record")."""
        try:
            return merge_contacts(self.state, primary_id, merged_id, self.merge_mode).id
        except ApiFailure as failure:
            raise ValueError(failure.message) from None

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
    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse
              ) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(CONTROL_PREFIX):  # a tester's hand, not API traffic
            from connectors.sandbox.hubspot.company_controls import company_controls
            from connectors.sandbox.hubspot.engagement_controls import engagement_controls
            from connectors.sandbox.webhooks import control_operations
            merge = {"merge": lambda body: {"id": self.merge(str(body["primary_id"]),
                                                             str(body["merged_id"]))},
                     **control_operations(self), **engagement_controls(self),
                     **company_controls(self)}
            control = handle(self, self.control_token, self.clock, request, merge)
            return control(environ, start_response)
        rule_name, endpoint, args = UNMATCHED_RULE, None, {}
        adapter = self._url_map.bind_to_environ(environ)
        response: Response | None = None
        try:
            rule, matched = adapter.match(return_rule=True)
            rule_name, endpoint, args = rule.rule, str(rule.endpoint), dict(matched)
        except NotFound:
            response = error_response(ApiFailure(404, "OBJECT_NOT_FOUND",
                                                 f"No route for {request.path}"))
        except MethodNotAllowed:
            response = error_response(ApiFailure(405, "VALIDATION_ERROR",
                                                 f"{request.method} is not allowed here"))
        except HTTPException as error:  # e.g. a redirect or a malformed request
            response = error.get_response(environ)
        plan = self.faults.plan(request.method, rule_name)
        self._delay(plan, environ)
        if response is None and endpoint is not None:
            environ[PLAN_KEY] = plan
            response = self._dispatch(request, endpoint, args, plan)
        assert response is not None
        if endpoint not in SEARCH_ENDPOINTS and "X-HubSpot-RateLimit-Daily" not in \
                response.headers:  # every answer but search's carries them, as HubSpot's
            response.headers.update(self.limiter.headers())
        self._count(request.method, rule_name, response.status_code)
        return response(environ, start_response)

    def _delay(self, plan: RequestPlan, environ: WSGIEnvironment) -> None:
        """Latency, a hung request or a dropped connection, as the plan says."""
        if plan.latency_seconds:
            self.faults.sleep(plan.latency_seconds)
        if plan.action == "drop":
            plan.record("drop")
            self._count(plan.method, plan.endpoint, NO_ANSWER)
            drop_connection(environ)
        if plan.action == "timeout":
            plan.record("timeout", detail=f"{self.faults.config.timeout_seconds:g} s")
            self.faults.sleep(self.faults.config.timeout_seconds)

    def _count(self, method: str, rule: str, status: int) -> None:
        with self._counts_lock:
            self.call_counts[(method, rule, status)] += 1

    def _dispatch(self, request: Request, endpoint: str, args: dict[str, str],
                  plan: RequestPlan) -> Response:
        is_search = endpoint in SEARCH_ENDPOINTS
        limiter = self.search_limiter if is_search else self.limiter
        denied = self._auth_failure(request)
        if denied is not None:
            return error_response(denied, {} if is_search else limiter.headers())
        if plan.action == "burst":
            plan.record("burst_429")
            return error_response(self._limit_failure(is_search, burst=True),
                                  {} if is_search else limiter.headers())
        decision = limiter.admit()
        headers = {} if is_search else decision.headers
        if not decision.allowed:
            return error_response(self._limit_failure(is_search), headers)
        if plan.action == "error":
            plan.record("error_5xx", detail=str(plan.error_status))
            return error_response(server_error(plan.error_status), headers)
        if plan.editor:
            self._simulate_editor(plan)
        try:
            status, body = handler_for(self.api, endpoint, args)(request, args)
        except ApiFailure as failure:
            return error_response(failure, headers)
        if status == 204:
            return Response(status=204, headers=headers)
        return json_response(body, status, headers)

    def _simulate_editor(self, plan: RequestPlan) -> None:
        """A colleague changes one contact's owner or lifecycle stage in HubSpot's UI."""
        rng, state = plan.rng, self.state
        record_id = editor_target(rng, list(self.api.recent_writes), self.world, IN_HUBSPOT,
                                  contact_id_for)
        contact: Contact | None = state.snapshot(record_id) if record_id else None
        if contact is None:
            return
        if rng.random() < 0.5:
            field = "hubspot_owner_id"
            choices = sorted(state.owner_ids(include_archived=False))
        else:
            field = "lifecyclestage"
            choices = [value for value, _ in LIFECYCLE_STAGES if value != "other"]
        value = choices[rng.randrange(len(choices))]
        state.apply(contact.id, {field: value}, source="CRM_UI")
        plan.record("editor", contact.id,
                    f"{field}: {contact.properties.get(field)} -> {value}")

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

    def _limit_failure(self, is_search: bool, burst: bool = False) -> ApiFailure:
        limiter = self.search_limiter if is_search else self.limiter
        if limiter.exhausted_daily() and not burst:
            failure = rate_limited("DAILY", "You have reached your daily limit.")
        elif is_search:
            failure = rate_limited("SECONDLY", "You have reached your secondly limit.")
        else:
            failure = rate_limited("TEN_SECONDLY_ROLLING",
                                   "You have reached your ten_secondly_rolling limit.")
        # Whole seconds after which a retry is admitted (an injected burst counts
        # requests, not seconds: it says 1, and a retry inside the burst is refused again).
        failure.headers["Retry-After"] = "1" if burst else str(limiter.retry_after())
        return failure

    def now(self) -> datetime:
        """The sandbox's current time (what an edit now would stamp)."""
        return self._clock().astimezone(timezone.utc)
