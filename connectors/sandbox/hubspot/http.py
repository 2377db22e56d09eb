"""HTTP conventions of the HubSpot API as the sandbox serves them.

Error bodies, rate-limit headers and timestamp formats are what clients parse and what the
connector's retry decisions depend on, so they live in one place and follow HubSpot's
published shapes (see shared/specs/HUBSPOT.md).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from syncer.domain.json_values import JSONValue

#: a JSON body the sandbox builds to answer with (json.dumps takes any such values)
Json = dict[str, object]
#: what an endpoint handler returns: the HTTP status and the JSON body
Answer = tuple[int, object]


class ApiFailure(Exception):
    """Raised by a handler to answer with a HubSpot error body."""

    def __init__(self, status: int, category: str, message: str, *,
                 context: Mapping[str, Sequence[str]] | None = None,
                 extra: Mapping[str, object] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.context = context
        self.extra = extra or {}
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        data: dict[str, object] = {"status": "error", "message": self.message,
                                "correlationId": str(uuid.uuid4()),
                                "category": self.category}
        if self.context:
            data["context"] = {key: list(values) for key, values in self.context.items()}
        data.update(self.extra)
        return data


def validation_error(message: str, **context: Sequence[str]) -> ApiFailure:
    return ApiFailure(400, "VALIDATION_ERROR", message, context=context or None)


def not_found(message: str = "Resource not found") -> ApiFailure:
    return ApiFailure(404, "OBJECT_NOT_FOUND", message)


def json_body(request: Request) -> JSONValue:
    """The request's JSON body (any JSON value: callers check the shape they need); a 400
    when it is not JSON."""
    body: JSONValue = request.get_json(silent=True)
    if body is None:
        raise validation_error("Invalid input JSON: the request body is not valid JSON")
    return body


def json_list(value: JSONValue, what: str) -> list[JSONValue]:
    """A body field that must be a JSON array (empty when absent); a 400 naming it else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise validation_error(f"Invalid input JSON: '{what}' must be a list")
    return value


def property_names(value: JSONValue) -> list[str] | None:
    """A body's list of property names as text; None (the defaults) when absent or empty."""
    if not isinstance(value, list):
        return None
    return [str(name) for name in value] or None


def json_response(data: object, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    response = Response(json.dumps(data), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(failure: ApiFailure, headers: Mapping[str, str] | None = None) -> Response:
    merged = dict(headers or {})
    merged.update(failure.headers)
    return json_response(failure.body(), failure.status, merged)


def iso_millis(moment: datetime) -> str:
    """HubSpot's timestamp format: UTC with milliseconds and a Z (2026-01-31T09:15:00.000Z)."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_instant(value: object) -> datetime:
    """A filter or query value as an instant: epoch milliseconds or an ISO 8601 string."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise validation_error(f"Invalid date-time value: '{text}'") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]


Clock = Callable[[], datetime]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROS = 1_000_000


def _micros(moment: datetime) -> int:
    """An instant as whole microseconds since the epoch: exact integer arithmetic, so a
    Retry-After computed from it is never off by a rounding error."""
    return (moment.astimezone(timezone.utc) - _EPOCH) // timedelta(microseconds=1)


def whole_seconds_until(micros: int) -> int:
    """The smallest whole number of seconds that covers `micros` (at least 1): what
    Retry-After says, so a retry after exactly that long is admitted."""
    return max(1, -(-micros // _MICROS))


def _wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class DailyBudget:
    """The app's daily request allowance, shared by every endpoint (search included).

    Like HubSpot's, it resets at midnight in the account's time zone (`time_zone`, an IANA
    name), read from `clock` (the sandbox's clock, so a test can move it)."""

    def __init__(self, limit: int, clock: Clock | None = None,
                 time_zone: str = "UTC") -> None:
        self.limit = limit
        self.used = 0
        self._clock = clock or _wall_clock
        self.time_zone = ZoneInfo(time_zone)
        self._day: date | None = None
        self._lock = threading.Lock()

    def _roll(self) -> None:
        """Start a new day's count when the account's date has changed (lock held)."""
        today = self._clock().astimezone(self.time_zone).date()
        if today != self._day:
            self._day, self.used = today, 0

    def spend(self) -> bool:
        with self._lock:
            self._roll()
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def exhausted(self) -> bool:
        with self._lock:
            self._roll()
            return self.used >= self.limit

    def remaining(self) -> int:
        with self._lock:
            self._roll()
            return max(0, self.limit - self.used)

    def seconds_until_reset(self) -> int:
        """Whole seconds until the next midnight in the account's time zone."""
        now = self._clock()
        local = now.astimezone(self.time_zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), dt_time(0),
                                    tzinfo=self.time_zone)
        return whole_seconds_until(_micros(midnight) - _micros(now))


class RollingRateLimiter:
    """HubSpot's per-app limits: N requests in any rolling window, and a daily total.

    Only admitted requests count, so a client that backs off recovers as soon as the
    oldest admitted request leaves the window. Limiters built on one DailyBudget share it.
    Time comes from `clock` (the sandbox's), in exact microseconds. With `per_window` None
    nothing is refused, but the headers still report `nominal` (the tier's limit) and the
    requests in the window, as HubSpot's answers always carry them.
    """

    def __init__(self, per_window: int | None, window_seconds: float = 10.0,
                 daily: int | DailyBudget = 1_000_000, clock: Clock | None = None,
                 nominal: int | None = None) -> None:
        self.per_window = per_window
        self.window_seconds = window_seconds
        self.nominal = nominal
        self._clock = clock or _wall_clock
        self.budget = daily if isinstance(daily, DailyBudget) else DailyBudget(
            daily, self._clock)
        self._admitted: deque[int] = deque()
        self._lock = threading.Lock()

    @property
    def daily(self) -> int:
        return self.budget.limit

    def _window_micros(self) -> int:
        return round(self.window_seconds * _MICROS)

    def _prune(self, now: int) -> None:
        window = self._window_micros()
        while self._admitted and now - self._admitted[0] >= window:
            self._admitted.popleft()

    def admit(self) -> RateDecision:
        """Count one request if it fits; say so, with the headers to send either way."""
        with self._lock:
            now = _micros(self._clock())
            self._prune(now)
            allowed = self.per_window is None or len(self._admitted) < self.per_window
            allowed = allowed and self.budget.spend()
            if allowed:
                self._admitted.append(now)
            return RateDecision(allowed, self._headers())

    def _headers(self) -> dict[str, str]:
        headers = {"X-HubSpot-RateLimit-Daily": str(self.budget.limit),
                   "X-HubSpot-RateLimit-Daily-Remaining": str(self.budget.remaining())}
        maximum = self.per_window if self.per_window is not None else self.nominal
        if maximum is not None:
            headers.update({
                "X-HubSpot-RateLimit-Max": str(maximum),
                "X-HubSpot-RateLimit-Remaining": str(max(0, maximum - len(self._admitted))),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(
                    int(self.window_seconds * 1000)),
            })
        return headers

    def headers(self) -> dict[str, str]:
        """The rate-limit headers as they stand (for answers that did not spend)."""
        with self._lock:
            self._prune(_micros(self._clock()))
            return self._headers()

    def retry_after(self) -> int:
        """Whole seconds until this limiter admits a request again (at least 1): until
        enough admitted requests have left the window, or, the daily allowance spent,
        until midnight in the account's time zone."""
        if self.budget.exhausted():
            return self.budget.seconds_until_reset()
        with self._lock:
            now = _micros(self._clock())
            self._prune(now)
            if self.per_window is None or len(self._admitted) < self.per_window:
                return 1
            # the request that frees the first slot: enough of the oldest must leave
            leaving = self._admitted[len(self._admitted) - self.per_window]
            return whole_seconds_until(leaving + self._window_micros() - now)

    def seconds_until_free(self) -> float:
        """How long until the oldest admitted request leaves the window."""
        with self._lock:
            if not self._admitted:
                return 0.0
            now = _micros(self._clock())
            return max(0.0, (self._admitted[0] + self._window_micros() - now) / _MICROS)

    def exhausted_daily(self) -> bool:
        return self.budget.exhausted()


#: where the sandbox hands a request's fault plan to the handlers (the WSGI environ).
PLAN_KEY = "syncer.fault_plan"

_SERVER_ERRORS = {
    500: "internal error", 502: "Bad Gateway: the upstream service did not answer",
    503: "Service Unavailable: HubSpot is temporarily unable to handle the request",
    504: "Gateway Timeout: the request took too long"}


def server_error(status: int) -> ApiFailure:
    """A 5xx as HubSpot's API answers it (an injected fault)."""
    return ApiFailure(status, "INTERNAL_ERROR", _SERVER_ERRORS.get(status, "internal error"))


def record_failure(kind: str) -> tuple[str, str]:
    """(category, message) of an injected per-record failure in a batch answer: a lock
    (retryable) or a validation rule (permanent)."""
    if kind == "lock":
        return "LOCKED", ("The record is being updated by another process; try again "
                          "later")
    return "VALIDATION_ERROR", ("Property values were not valid: a validation rule of "
                                "this portal rejected the change")


def rate_limited(policy: str, message: str) -> ApiFailure:
    """HubSpot's 429 body; `category` is added so schema-driven clients can parse it."""
    return ApiFailure(429, "RATE_LIMITS", message,
                      extra={"errorType": "RATE_LIMIT", "policyName": policy})
