"""Which people pages a sync asked the sandboxes for: HubSpot contact list cursors,
Salesforce people queries and Bulk API 2.0 result set locators, in order.

Wraps a sandbox's WSGI app before it starts. Used by tests/test_resume_full_sync.py and
bench/bench_million.py to show that a restarted full sync asks for no page it committed.
With `key=activity_page_key` it logs HubSpot's events listing pages instead (by their
`after` cursor), the bulk of a full sync's activity requests.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

App = Callable[[dict[str, Any], Any], Iterable[bytes]]


class PageLog:
    """The people page requests a sandbox answered: (method, path, query string). With
    `bulk_set`, a Bulk result read asks for at most that many records (Salesforce sizes
    result sets itself, so a smaller set than asked is the API's own behaviour)."""

    def __init__(self, bulk_set: int | None = None,
                 key: Callable[[str, str, str], str | None] | None = None) -> None:
        self.lines: list[tuple[str, str, str]] = []
        self.bulk_set = bulk_set
        self.key = key or page_key
        self._lock = threading.Lock()

    def attach(self, sandbox: object) -> None:
        """Log `sandbox`'s requests (call before its start())."""
        app: App = sandbox._wsgi  # type: ignore[attr-defined]
        sandbox._wsgi = self.wrap(app)  # type: ignore[attr-defined]

    def wrap(self, app: App) -> App:
        def logged(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            query = str(environ.get("QUERY_STRING", ""))
            if self.bulk_set is not None and "maxRecords=" in query:
                query = re.sub(r"maxRecords=\d+", f"maxRecords={self.bulk_set}", query)
                environ["QUERY_STRING"] = query
            line = (str(environ["REQUEST_METHOD"]), str(environ["PATH_INFO"]), query)
            if self.key(*line) is not None:
                with self._lock:
                    self.lines.append(line)
            return app(environ, start_response)
        return logged

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def pages(self, since: int = 0, until: int | None = None) -> list[str]:
        """The people pages requested, in order, each once (a retry asks the same page)."""
        with self._lock:
            lines = self.lines[since:until]
        found: dict[str, None] = {}
        for line in lines:
            key = self.key(*line)
            if key is not None:
                found.setdefault(key, None)
        return list(found)


def page_key(method: str, path: str, query: str) -> str | None:
    """A people page request's identity, None for any other request."""
    if method != "GET":
        return None
    args = parse_qs(query)
    if path == "/crm/v3/objects/contacts":
        if args.get("archived", ["false"])[0].lower() == "true":
            return None
        return f"hubspot after={args.get('after', ['start'])[0]}"
    if path.endswith("/results") and "/jobs/query/" in path:
        return f"bulk {path} locator={args.get('locator', ['start'])[0]}"
    soql = args.get("q", [""])[0]
    if path.endswith("/query/") and ("FROM Lead" in soql or "FROM Contact" in soql):
        return f"query {soql}"
    return None


def activity_page_key(method: str, path: str, query: str) -> str | None:
    """A page of HubSpot's events listing (of every contact) by its cursor, None for any
    other request."""
    if method != "GET" or path.rstrip("/") != "/events/v3/events":
        return None
    args = parse_qs(query)
    if "objectId" in args:
        return None
    return f"events after={args.get('after', ['start'])[0]}"
