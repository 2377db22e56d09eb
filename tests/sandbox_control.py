"""Tests drive a running sandbox as a tester would: over HTTP, through its control API
(connectors/sandbox/control.py, docs/sandbox.md#control-api), never by reaching into its
Python objects. One helper for every test, so the header, the CA file and the error
report are the same everywhere.

    control(box, "edit", id=..., field=..., value=...)   POST /_sandbox/edit -> its JSON
    result(box, "create_company", name="Acme")           a CRM operation's "result"
    control_get(box, "records/1001")                     GET /_sandbox/records/1001

A non-2xx answer raises ControlRefused with the status and the decoded body, so a test
that expects a refusal asserts on both, and one that does not fails showing the
sandbox's own message.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import requests

from connectors.sandbox.control import CONTROL_HEADER, CONTROL_PREFIX


class Controlled(Protocol):
    """What a running sandbox (HubSpot's or Salesforce's) offers the helper."""

    base_url: str
    control_token: str
    ca_file: str | None


class ControlRefused(AssertionError):
    """The sandbox answered a control request with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, body: object) -> None:
        self.status = status
        self.body = body
        self.message = str(body.get("message", "")) if isinstance(body, dict) else str(body)
        super().__init__(f"{method} {CONTROL_PREFIX}{path} answered {status}: {body}")


def _decoded(answer: requests.Response) -> object:
    try:
        return answer.json()
    except json.JSONDecodeError:
        return answer.text


def control_request(box: Controlled, method: str, path: str, body: object = None, *,
                    token: str | None = None) -> Any:
    """One control request with the box's token (or `token`); the decoded JSON answer
    (Any: tests index it as the sandbox documents it). ControlRefused on a non-2xx."""
    with requests.Session() as session:
        session.trust_env = False  # no proxy, no REQUESTS_CA_BUNDLE: 127.0.0.1 and its CA
        answer = session.request(
            method, f"{box.base_url}{CONTROL_PREFIX}{path}", json=body, timeout=30,
            headers={CONTROL_HEADER: box.control_token if token is None else token},
            verify=box.ca_file or True)
    if not 200 <= answer.status_code < 300:
        raise ControlRefused(method, path, answer.status_code, _decoded(answer))
    return _decoded(answer)


def control(box: Controlled, operation: str, /, **body: object) -> Any:
    """POST one control operation with `body` as its JSON; the whole decoded answer."""
    return control_request(box, "POST", operation, body)


def result(box: Controlled, operation: str, /, **body: object) -> Any:
    """A CRM's own operation (merge, create_company, log_activity, ...): its "result"."""
    return control(box, operation, **body)["result"]


def control_get(box: Controlled, path: str = "") -> Any:
    """GET a control read: "" (the operations), "records", "records/<id>", "clock"."""
    return control_request(box, "GET", path)
