"""The control API of a running sandbox: what a tester does to the CRM by hand, over HTTP.

`syncer sandbox` runs the emulators in their own process; a tester (or a test driving that
process) needs to do what a person in the CRM does: edit a field, merge two records,
convert a lead, and move the clock (stage ages, decay, daily limits). These are the same
operations the Python tests call on the sandbox objects, served under `/_sandbox/` on each
sandbox's own port (docs/sandbox.md#control-api):

    GET  /_sandbox/                       the operations this sandbox offers
    GET  /_sandbox/records[?changed=true] every record (or those changed since start)
    GET  /_sandbox/records/<id>           one record
    POST /_sandbox/edit     {"id": ..., "field": ..., "value": ...}   as a person in the UI
                            (+ "stamp": ISO time: the modification time it gets instead
                            of now, e.g. 30 minutes behind syncer's cursor)
    POST /_sandbox/merge    HubSpot {"primary_id", "merged_id"}; Salesforce
                            {"master_id", "duplicate_ids": [...]}
    POST /_sandbox/convert  Salesforce {"lead_id", "account_id"?}
    POST /_sandbox/clock    {"advance_seconds": n}: the sandbox's clock moves forward
    POST /_sandbox/log_activity  a rep logs a call, meeting, email, note or task on a person
                            (HubSpot: an engagement; Salesforce: a Task or an Event)
    POST /_sandbox/close_deal    Salesforce: a Closed Won/Lost Opportunity on a Contact
    GET  /_sandbox/clock    the sandbox's current time

Every request carries `X-Sandbox-Control: <token>` (printed by `syncer sandbox` as
`control_token`); without it the answer is 401. Control requests are not API traffic:
they pass no fault injection or rate limit and are not counted in the sandbox's calls.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Protocol

from werkzeug.wrappers import Request, Response

from syncer.domain.json_values import JSONObject, JSONValue

CONTROL_PREFIX = "/_sandbox/"
CONTROL_HEADER = "X-Sandbox-Control"
#: one CRM's own control operation: the request's JSON body in, what to answer out
#: (dumped as JSON; values JSON has no form for, such as datetimes, as text)
Operation = Callable[[JSONObject], object]


class Controllable(Protocol):
    """What a sandbox offers its control API (both emulators implement it)."""

    def records(self) -> Sequence[Mapping[str, object]]: ...

    def changed_records(self) -> Sequence[Mapping[str, object]]: ...

    def record(self, record_id: str) -> Mapping[str, object]: ...

    def edit(self, record_id: str, field: str, value: str | None) -> None: ...

    def now(self) -> datetime: ...


class MovableClock:
    """The sandbox's clock: a base clock plus an offset the control API advances. Only
    forward: a CRM's stamps never go back."""

    def __init__(self, base: Callable[[], datetime] | None = None) -> None:
        self._base = base or (lambda: datetime.now(timezone.utc))
        self._offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self._base() + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("advance_seconds must be 0 or more: the clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _json(status: int, body: object) -> Response:
    return Response(json.dumps(body, default=str), status=status,
                    content_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json(status, {"status": "error", "message": message})


def _stamp(value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"stamp {value!r} is not an ISO 8601 time; e.g. "
                         "2026-11-20T11:30:00+00:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"stamp {value!r} has no UTC offset; add one, e.g. +00:00")
    return moment


def restamp(sandbox: object, record_id: str, at: datetime) -> None:
    """Give an edited record an explicit modification time (the edit's `stamp`): what a
    late commit, a restored backup or a clock-skewed integration leaves behind the cursor.
    The HubSpot sandbox keeps contacts in `state`, the Salesforce one rows in `org`."""
    holder = getattr(sandbox, "state", None) or getattr(sandbox, "org", None)
    stamp = getattr(holder, "restamp", None)
    if stamp is None:
        raise ValueError("this sandbox cannot set a record's stamp")
    stamp(record_id, at)


def handle(sandbox: Controllable, token: str, clock: MovableClock, request: Request,
           extra: dict[str, Operation]) -> Response:
    """Answer one control request. `extra`: the operations only this CRM has (merge,
    convert), each taking the JSON body and returning what to answer."""
    if not hmac.compare_digest(request.headers.get(CONTROL_HEADER, ""), token):
        return _error(401, f"missing or wrong {CONTROL_HEADER} header (the control_token "
                           "`syncer sandbox` printed)")
    path = request.path[len(CONTROL_PREFIX):].strip("/")
    try:
        if request.method == "GET":
            return _get(sandbox, clock, path, request, extra)
        if request.method != "POST":
            return _error(405, f"{request.method} is not a control operation")
        body: JSONValue = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        return _post(sandbox, clock, path, body, extra)
    except KeyError as missing:
        return _error(400 if path != "records" else 404, f"missing or unknown: {missing}")
    except ValueError as refused:  # the CRM's own validation, as its UI would refuse
        return _error(400, str(refused))


def _get(sandbox: Controllable, clock: MovableClock, path: str, request: Request,
         extra: dict[str, Operation]) -> Response:
    if path == "":
        return _json(200, {"operations": ["GET records", "GET records/<id>", "POST edit",
                                          "GET clock", "POST clock",
                                          *(f"POST {name}" for name in sorted(extra))]})
    if path == "records":
        changed = request.args.get("changed", "").lower() in ("1", "true", "yes")
        return _json(200, {"results": sandbox.changed_records() if changed
                           else sandbox.records()})
    if path.startswith("records/"):
        try:
            return _json(200, sandbox.record(path.removeprefix("records/")))
        except (KeyError, ValueError):
            return _error(404, f"no record {path.removeprefix('records/')}")
    if path == "clock":
        return _json(200, {"now": sandbox.now().isoformat()})
    return _error(404, f"no control operation {path!r}; GET {CONTROL_PREFIX} lists them")


def _post(sandbox: Controllable, clock: MovableClock, path: str, body: JSONObject,
          extra: dict[str, Operation]) -> Response:
    if path == "edit":
        record_id = str(body["id"])
        value = body.get("value")
        sandbox.edit(record_id, str(body["field"]), None if value is None else str(value))
        if body.get("stamp") is not None:
            restamp(sandbox, record_id, _stamp(body["stamp"]))
        return _json(200, sandbox.record(record_id))
    if path == "clock":
        seconds = body.get("advance_seconds", 0)
        if isinstance(seconds, (list, dict)) or seconds is None:
            raise ValueError("advance_seconds must be a number of seconds, e.g. 3600")
        clock.advance(float(seconds))
        return _json(200, {"now": sandbox.now().isoformat()})
    if path in extra:
        return _json(200, {"result": extra[path](body)})
    return _error(404, f"no control operation {path!r}; GET {CONTROL_PREFIX} lists them")
