"""Every HubSpot request of a connector, one at a time, through the one retry layer.

urllib3's own retries are off in the client; each request goes through `RetryPolicy.call`,
which retries only what `classify` calls transient (429, 5xx, timeouts, dropped
connections). Before each request the budget HubSpot reports in its rate-limit headers is
spent (request_budget.py), so a sync that runs alone waits instead of collecting 429s.
Each answer's JSON comes back decoded (raw.py); `pages` walks `after` cursors and reads
each record into its typed shape (answers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import urllib3
from hubspot.crm.associations.v4 import (  # type: ignore[import-untyped]
    ApiException as AssociationsApiException,
)
from hubspot.crm.companies import (  # type: ignore[import-untyped]
    ApiException as CompaniesApiException,
)
from hubspot.crm.contacts import (  # type: ignore[import-untyped]
    ApiException as ContactsApiException,
)
from hubspot.crm.objects import ApiException as ObjectsApiException  # type: ignore[import-untyped]
from hubspot.crm.owners import ApiException as OwnersApiException  # type: ignore[import-untyped]
from hubspot.crm.properties import (  # type: ignore[import-untyped]
    ApiException as PropertiesApiException,
)
from hubspot.events import ApiException as EventsApiException  # type: ignore[import-untyped]

from connectors.hubspot.answers import next_after, page
from connectors.hubspot.errors import Conflict, RequestRejected, read_error
from connectors.hubspot.raw import Answer, ApiError, Headers, RawResponse, answer
from connectors.hubspot.request_budget import RequestBudget
from connectors.retry import RETRYABLE_STATUSES, RetryPolicy, TransientError, retry_after_seconds
from syncer.domain.api_usage import ApiUsage
from syncer.domain.connector import ConnectorError
from syncer.domain.json_values import JSONObject, JSONValue

R = TypeVar("R")
#: each API package of the client raises its own ApiException class (no common base but
#: Exception): a request through an API whose class is missing here escapes the retry layer
API_EXCEPTIONS = (ContactsApiException, OwnersApiException, EventsApiException,
                  PropertiesApiException, ObjectsApiException, AssociationsApiException,
                  CompaniesApiException)


class ApiCalls:
    """The requests of one connector (`name`, at `base_url`, signed with `token`): counted,
    spent from the budget, retried by `retry`, their usage recorded in `usage`."""

    def __init__(self, name: str, base_url: str, token: str, retry: RetryPolicy,
                 usage: ApiUsage, budget: RequestBudget | None) -> None:
        self.name, self._base_url, self._token = name, base_url, token
        self._retry, self.usage, self._budget = retry, usage, budget
        self.count = 0

    def call(self, what: str, fn: Callable[[], Answer]) -> tuple[JSONObject, int]:
        """One API request through the retry policy; returns (data, status)."""
        def attempt() -> tuple[JSONObject, int]:
            if self._budget is not None:
                self._budget.before_request()
            self.count += 1
            try:
                data, status, headers = fn()
            except API_EXCEPTIONS as error:
                self._note_usage(int(error.status or 0), error.headers)
                if self._budget is not None:
                    self._budget.after_response(error.headers)
                raise self.classify(what, error) from None
            except urllib3.exceptions.HTTPError as error:
                self.usage.record_response(None)
                raise TransientError(f"{what}: {type(error).__name__} talking to HubSpot at "
                                     f"{self._base_url}") from None
            self._note_usage(status, headers)
            if self._budget is not None:
                self._budget.after_response(headers)
            return data, status
        return self._retry.call(attempt, usage=self.usage)

    def _note_usage(self, status: int, headers: Headers) -> None:
        self.usage.record_response(status or None)
        remaining = headers.get("X-HubSpot-RateLimit-Remaining") if headers else None
        if headers is not None and remaining is not None and remaining.isdigit():
            limit = headers.get("X-HubSpot-RateLimit-Max", "")
            self.usage.record_headroom(int(remaining), int(limit) if limit.isdigit() else None)

    def classify(self, what: str, error: ApiError) -> Exception:
        """The client's ApiException as what the pipeline acts on: retry, a credentials
        problem, a conflict, a rejected request (never the token in the message)."""
        status = int(error.status or 0)
        body = read_error(error.body)
        detail = f"{what}: HubSpot answered {status} {body.category}: {body.message}"
        detail = detail.replace(self._token, "<redacted>")
        if status in RETRYABLE_STATUSES:
            return TransientError(detail, status=status,
                                  retry_after=retry_after_seconds(error.headers))
        if status in (401, 403):
            return ConnectorError(f"{detail}. Check credentials.access_token of connector "
                                  f"{self.name} (a private app token with CRM scopes)")
        if status == 0:
            return ConnectorError(f"{what}: cannot reach HubSpot at "
                                  f"{self._base_url}: {error.reason}")
        if status == 409:
            return Conflict(detail, body)
        return RequestRejected(detail, body) if status == 400 else ConnectorError(detail)

    def pages(self, what: str, fetch: Callable[[str | None], RawResponse],
              read: Callable[[JSONValue, str], R]) -> Iterator[list[R]]:
        """Walk `after` cursors, each record read by `read` (answers.py); a cursor HubSpot
        hands out twice stops the walk loudly."""
        return (found for found, _ in self.positioned(what, fetch, read, None))

    def positioned(self, what: str, fetch: Callable[[str | None], RawResponse],
                   read: Callable[[JSONValue, str], R], after: str | None
                   ) -> Iterator[tuple[list[R], str | None]]:
        """As `pages` from the cursor `after` (None: the start), each page with the cursor
        that follows it (None: the last). HubSpot's list cursors are the next object's
        id, so one kept in the state outlives the process (a resumed full pull)."""
        seen: set[str] = set()
        while True:
            def request(cursor: str | None = after) -> Answer:
                return answer(fetch(cursor))
            body, _ = self.call(what, request)
            found = page(body, what, read)
            after = next_after(found) or None
            yield found["results"], after
            if not after:
                return
            if after in seen:
                raise ConnectorError(f"{what}: HubSpot repeated paging cursor {after!r}; "
                                     "stopping instead of looping")
            seen.add(after)
