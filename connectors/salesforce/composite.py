"""Several SOQL queries' first pages in one call, through Salesforce's Composite resource.

An incremental run's reads are small: the Leads and Contacts changed since the cursor, the
four activity streams, the newest stamps. Each is a query whose first page is usually its
whole answer, and each used to cost a request. The Composite resource (POST composite)
runs up to 25 subrequests, at most 5 of them query operations, and "the entire series of
requests counts as a single call toward your API limits" (REST API Developer Guide, "Send
Multiple Requests Using Composite"); so the first pages of up to 5 queries cost one call.

The composite goes through the client's one retry layer (`_call`): a 429, a
REQUEST_LIMIT_EXCEEDED or a 5xx on it waits and retries as any call does. Only a
subrequest that answered 200 is read (answers.py checks its shape); any other subrequest
is not interpreted here: its query is run alone through the plain path (`_pages`), so its
error is raised, retried or explained exactly as a query on its own would be. A composite
refused as a whole (a 4xx the retry layer does not retry) falls back the same way, every
query alone. After the first page, each query goes on with query-more pages as before.
A single query is never wrapped: alone it costs one call either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlencode

import structlog
from simple_salesforce.api import Salesforce

from connectors.salesforce.answers import (
    AnswerShapeError,
    QueryPage,
    Row,
    composite_results,
    query_page,
)
from syncer.domain.connector import ConnectorError
from syncer.domain.json_values import JSONObject

T = TypeVar("T")
log = structlog.get_logger(__name__)

#: the Composite resource's limit on query operations (query, queryAll, query-more)
QUERIES_PER_CALL = 5


class PagedQueries(Protocol):
    """What the composite reads use of the client (SalesforceClient is one)."""

    name: str
    _query_headers: dict[str, str]

    def _call(self, operation: str, fn: Callable[[Salesforce], T]) -> T: ...

    def _pages(self, operation: str, query: str, *, include_deleted: bool = False,
               first: QueryPage | None = None) -> Iterator[list[Row]]: ...


def paged_together(client: PagedQueries, operation: str,
                   queries: Sequence[tuple[str, bool]]) -> list[Iterator[list[Row]]]:
    """Each (query, include_deleted)'s pages, in order: the first pages read together, up
    to 5 a composite call, the rest by query-more as the plain path reads them."""
    firsts = first_pages(client, operation, queries)
    return [client._pages(operation, query, include_deleted=deleted, first=first)
            for (query, deleted), first in zip(queries, firsts, strict=True)]


def first_pages(client: PagedQueries, operation: str,
                queries: Sequence[tuple[str, bool]]) -> list[QueryPage | None]:
    """Each query's first page; None where the plain path must run the query alone."""
    found: list[QueryPage | None] = []
    for start in range(0, len(queries), QUERIES_PER_CALL):
        found.extend(_one_call(client, operation, queries[start:start + QUERIES_PER_CALL]))
    return found


def _subrequests(version: str, queries: Sequence[tuple[str, bool]],
                 headers: Mapping[str, str]) -> list[JSONObject]:
    made: list[JSONObject] = []
    for index, (query, deleted) in enumerate(queries):
        resource = "queryAll" if deleted else "query"
        sub: JSONObject = {"method": "GET", "referenceId": f"q{index}",
                           "url": f"/services/data/v{version}/{resource}/?"
                                  f"{urlencode({'q': query})}"}
        if headers:  # the page size (Sforce-Query-Options) is a subrequest's own header
            sub["httpHeaders"] = dict(headers)
        made.append(sub)
    return made


def _one_call(client: PagedQueries, operation: str,
              queries: Sequence[tuple[str, bool]]) -> list[QueryPage | None]:
    if len(queries) < 2:
        return [None] * len(queries)
    headers = client._query_headers

    def call(sf: Salesforce) -> object:
        body = {"allOrNone": False, "compositeRequest": _subrequests(
            str(sf.sf_version), queries, headers)}
        return sf.restful("composite", method="POST", json=body)
    where = f"{operation} composite"
    try:
        results = composite_results(client._call(operation, call), where)
    except AnswerShapeError:
        raise
    except ConnectorError as error:  # refused as a whole: every query alone, as before
        log.warning("salesforce.composite_refused", connector=client.name,
                    operation=operation, error=str(error))
        return [None] * len(queries)
    by_reference = {result["referenceId"]: result for result in results}
    found: list[QueryPage | None] = []
    for index in range(len(queries)):
        result = by_reference.get(f"q{index}")
        if result is None:
            raise AnswerShapeError(f"Salesforce answered {where} without the subrequest "
                                   f"q{index} (compositeResponse[].referenceId)")
        if result["httpStatusCode"] != 200:
            log.info("salesforce.composite_subrequest_failed", connector=client.name,
                     operation=operation, status=result["httpStatusCode"],
                     reference=f"q{index}")
            found.append(None)  # the plain path runs it alone and says what failed
            continue
        found.append(query_page(result["body"], f"{where} q{index}"))
    return found
