"""How the Salesforce sandbox answers at the HTTP level: JSON bodies, Salesforce's error
shape (a list of {message, errorCode[, fields]}), the common 404/405 answers, the API
versions it serves and the route template of a path (for call_counts and fault records).
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Response


def json_response(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def error_response(status: int, error_code: str, message: str,
                   fields: list[str] | None = None) -> Response:
    """Salesforce's error body: a JSON list of {message, errorCode[, fields]}."""
    error: dict[str, object] = {"message": message, "errorCode": error_code}
    if fields is not None:
        error["fields"] = fields
    return json_response([error], status)


def not_found() -> Response:
    return error_response(404, "NOT_FOUND", "The requested resource does not exist")


def deleted() -> Response:
    """A deleted (merged-away) record by id: 404 as Salesforce answers it."""
    return error_response(404, "ENTITY_IS_DELETED", "entity is deleted", [])


def method_not_allowed(method: str, allowed: str) -> Response:
    return error_response(405, "METHOD_NOT_ALLOWED",
                          f"HTTP Method '{method}' not allowed. Allowed are {allowed}")


def versions() -> list[dict[str, str]]:
    return [{"label": f"Release {v}", "url": f"/services/data/v{v}", "version": v}
            for v in ("57.0", "58.0", "59.0", "60.0")]


def route_name(rest: str) -> str:
    """A path under vNN.N as a route template, for call_counts."""
    parts = rest.split("/") if rest else []
    if not parts:
        return "resources"
    head = parts[0]
    if head in ("query", "queryAll"):
        return head if len(parts) == 1 else f"{head}/<locator>"
    if head == "sobjects":
        templates = {1: "sobjects", 2: "sobjects/<type>", 3: "sobjects/<type>/<id>"}
        if len(parts) == 3 and parts[2] == "describe":
            return "sobjects/<type>/describe"
        return templates.get(len(parts), "unknown")
    if rest in ("composite", "composite/sobjects"):
        return rest
    if parts[:2] == ["jobs", "query"] and len(parts) <= 4:  # Bulk API 2.0 query jobs
        return ("jobs/query", "jobs/query/<id>", "jobs/query/<id>/results")[len(parts) - 2]
    return head if head == "limits" and len(parts) == 1 else "unknown"
