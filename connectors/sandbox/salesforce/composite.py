"""POST composite: several REST subrequests in one call, as the Salesforce REST API's
Composite resource runs them ("Send Multiple Requests Using Composite").

The server admits the composite once (session, daily allocation, rate limits, faults), so
the whole series counts as a single call, as the documents say; each subrequest then runs
through the same `RestApi.handle` the plain routes use, in order, and its answer comes back
as {body, httpHeaders, httpStatusCode, referenceId} in request order.

What the sandbox enforces, as documented: at most 25 subrequests, at most 5 of them query
operations or sObject Collections (query, queryAll, a query-more page, composite/sobjects);
each has a `method` (DELETE, GET, PATCH, POST, case-sensitive), a `url` under
/services/data/vNN.N/ and a `referenceId` of letters, digits and underscores, unique in the
request; `httpHeaders` may not set Accept, Authorization or Content-Type (a subrequest
inherits those). A request breaking one of these is refused as a whole: 400 with a
Salesforce error list naming what is wrong. With `allOrNone` true, once a subrequest fails
the others answer 400 PROCESSING_HALTED (the sandbox's reads have nothing to roll back;
writes already applied stay, a documented simplification). References between subrequests
(`@{ref.field}`) are not resolved: syncer sends independent reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from connectors.sandbox.salesforce.responses import error_response, json_response
from syncer.domain.json_values import JSONObject, JSONValue

MAX_SUBREQUESTS = 25
MAX_QUERY_OPERATIONS = 5
METHODS = ("DELETE", "GET", "PATCH", "POST")
#: headers a subrequest inherits from the composite and may not set itself
INHERITED_HEADERS = frozenset({"accept", "authorization", "content-type"})
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")
_DATA_URL = re.compile(r"^/services/data/v(\d+\.\d+)(?:/(.*))?$")
HALTED: JSONObject = {
    "errorCode": "PROCESSING_HALTED",
    "message": "The transaction was rolled back since another operation in the same "
               "transaction failed."}

#: runs one admitted request: (request, API version, path under vNN.N) -> answer
Handler = Callable[[Request, str, str], Response]


class _Refused(Exception):
    """The composite request breaks a rule: refused as a whole (400)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class _Subrequest:
    """One checked subrequest: what to run and under which reference."""

    def __init__(self, index: int, item: JSONValue) -> None:
        where = f"compositeRequest[{index}]"
        if not isinstance(item, dict):
            raise _Refused("JSON_PARSER_ERROR", f"{where} is not a JSON object")
        reference = item.get("referenceId")
        if not isinstance(reference, str) or not reference:
            raise _Refused("INVALID_INPUT", f"{where}: referenceId is required")
        if not _REFERENCE_ID.match(reference):
            raise _Refused("INVALID_INPUT", f"{where}: referenceId '{reference}' may contain "
                           "only letters, numbers and underscores")
        method = item.get("method")
        if method not in METHODS:
            raise _Refused("INVALID_INPUT", f"{where} ({reference}): method {method!r} is not "
                           f"supported; use one of {', '.join(METHODS)}")
        url = item.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        match = _DATA_URL.match(parts.path) if parts is not None else None
        if parts is None or match is None:
            raise _Refused("INVALID_INPUT", f"{where} ({reference}): url {url!r} is not under "
                           "/services/data/vNN.N/")
        headers = item.get("httpHeaders") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str)
                                                    for v in headers.values()):
            raise _Refused("INVALID_INPUT", f"{where} ({reference}): httpHeaders must map "
                           "header names to strings")
        inherited = sorted(h for h in headers if h.lower() in INHERITED_HEADERS)
        if inherited:
            raise _Refused("INVALID_INPUT", f"{where} ({reference}): httpHeaders may not set "
                           f"{', '.join(inherited)} (inherited from the composite request)")
        if (match.group(2) or "").strip("/") == "composite":
            raise _Refused("INVALID_INPUT", f"{where} ({reference}): a composite request "
                           "cannot hold another composite request")
        self.reference = reference
        self.method = str(method)
        self.version = match.group(1)
        self.rest = (match.group(2) or "").strip("/")
        self.query_string = parts.query
        self.headers = {k: str(v) for k, v in headers.items()}
        self.body = item.get("body")

    @property
    def is_query_operation(self) -> bool:
        """query, queryAll, a query-more page, or an sObject Collections request."""
        head = self.rest.split("/", 1)[0]
        return head in ("query", "queryAll") or self.rest == "composite/sobjects"

    def request(self, outer: Request) -> Request:
        """The subrequest as a request of its own, with the composite's inherited headers
        and environ (the fault plan) carried over."""
        headers = {name: value for name, value in outer.headers.items()
                   if name.lower() in INHERITED_HEADERS and name.lower() != "content-type"}
        headers.update(self.headers)
        builder = EnvironBuilder(
            path=f"/services/data/v{self.version}/{self.rest}", method=self.method,
            query_string=self.query_string, headers=list(headers.items()),
            data=None if self.body is None else json.dumps(self.body),
            content_type=None if self.body is None else "application/json")
        environ = builder.get_environ()
        builder.close()
        for key, value in outer.environ.items():
            if key.startswith("syncer."):
                environ[key] = value
        return Request(environ)


def _checked(body: JSONValue) -> tuple[bool, list[_Subrequest]]:
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise _Refused("JSON_PARSER_ERROR", "Expected a JSON object with a compositeRequest "
                       "array")
    items = body["compositeRequest"]
    assert isinstance(items, list)
    if not items:
        raise _Refused("INVALID_INPUT", "compositeRequest must hold at least one subrequest")
    if len(items) > MAX_SUBREQUESTS:
        raise _Refused("LIMIT_EXCEEDED", f"A composite request may hold at most "
                       f"{MAX_SUBREQUESTS} subrequests; it has {len(items)}")
    subrequests = [_Subrequest(index, item) for index, item in enumerate(items)]
    seen: set[str] = set()
    for sub in subrequests:
        if sub.reference in seen:
            raise _Refused("INVALID_INPUT", f"Duplicate referenceId '{sub.reference}' in the "
                           "composite request")
        seen.add(sub.reference)
    queries = sum(1 for sub in subrequests if sub.is_query_operation)
    if queries > MAX_QUERY_OPERATIONS:
        raise _Refused("LIMIT_EXCEEDED", f"A composite request may hold at most "
                       f"{MAX_QUERY_OPERATIONS} query operations or sObject Collections "
                       f"requests; it has {queries}")
    return body.get("allOrNone") is True, subrequests


def _answer(sub: _Subrequest, response: Response) -> JSONObject:
    text = response.get_data(as_text=True)
    body: JSONValue = json.loads(text) if text else None
    headers: JSONObject = {k: v for k, v in response.headers.items()
                           if k.lower() not in ("content-length", "content-type")}
    return {"body": body, "httpHeaders": headers, "httpStatusCode": response.status_code,
            "referenceId": sub.reference}


def run_composite(request: Request, handle: Handler) -> Response:
    """POST composite: check the whole request, then run each subrequest in order."""
    if request.method != "POST":
        return error_response(405, "METHOD_NOT_ALLOWED",
                              f"HTTP Method '{request.method}' not allowed. Allowed are POST")
    payload: JSONValue = request.get_json(silent=True)
    try:
        all_or_none, subrequests = _checked(payload)
    except _Refused as refused:
        return error_response(400, refused.error_code, refused.message)
    answers: list[JSONObject] = []
    failed = False
    for sub in subrequests:
        if failed and all_or_none:
            answers.append({"body": [dict(HALTED)], "httpHeaders": {}, "httpStatusCode": 400,
                            "referenceId": sub.reference})
            continue
        answer = _answer(sub, handle(sub.request(request), sub.version, sub.rest))
        status = answer["httpStatusCode"]
        failed = failed or (isinstance(status, int) and status >= 400)
        answers.append(answer)
    if failed and all_or_none:  # the ones before the failure are rolled back too
        for answer in answers:
            status = answer["httpStatusCode"]
            if isinstance(status, int) and status < 400:
                answer.update({"body": [dict(HALTED)], "httpHeaders": {},
                               "httpStatusCode": 400})
    return json_response({"compositeResponse": answers})
