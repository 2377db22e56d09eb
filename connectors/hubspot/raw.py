"""HubSpot answers read as JSON instead of the client's model objects.

hubspot-api-client turns every answer into model objects and parses every timestamp with
dateutil: for a page of 100 contacts or 1,000 events that cost more CPU than everything
else syncer did with them (profiled in bench/RESULTS.md, "Syncer's own CPU per person").
The connector still sends each request through the real client (auth, query encoding,
error answers raised as its ApiException), but asks for the raw response
(`_preload_content=False`) and decodes it here; answers.py reads the decoded JSON into
typed records, and a timestamp is parsed only when it is read.

The client is untyped; the Protocols below say what syncer uses of its objects, so the
values it hands back are typed from the first line that receives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from dateutil import parser as dateutil_parser  # type: ignore[import-untyped]

from connectors.hubspot.answers import AnswerShapeError
from syncer.domain.json_values import JSONObject, parse_json

#: response headers (urllib3's HTTPHeaderDict is one), None when an error carries none
Headers = Mapping[str, str] | None
#: (decoded JSON body, HTTP status, headers) of one request
Answer = tuple[JSONObject, int, Headers]


class RawResponse(Protocol):
    """What a request made with `_preload_content=False` returns (a urllib3 response)."""

    @property
    def data(self) -> bytes: ...

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class ApiError(Protocol):
    """What syncer reads of the client's ApiException."""

    @property
    def status(self) -> int | None: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def body(self) -> str | bytes | None: ...

    @property
    def headers(self) -> Mapping[str, str] | None: ...


class _Configuration(Protocol):
    host: str


class _PoolManager(Protocol):
    def clear(self) -> None: ...


class _RestClient(Protocol):
    @property
    def pool_manager(self) -> _PoolManager: ...


class _ApiClient(Protocol):
    @property
    def configuration(self) -> _Configuration: ...

    @property
    def rest_client(self) -> _RestClient: ...


class GeneratedApi(Protocol):
    """One API object of the client (basic_api, search_api, ...): each has its own
    api_client, whose host syncer sets and whose pooled connections it closes."""

    @property
    def api_client(self) -> _ApiClient: ...


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 stamp as the client would give it (dateutil), the fast way first."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        parsed: datetime = dateutil_parser.parse(text)
        return parsed


def answer(response: RawResponse) -> Answer:
    """(body, status, headers) of a request made with `_preload_content=False`, as the
    `*_with_http_info` methods return them for the models; an empty body is `{}`, a body
    that is not a JSON object (HubSpot answers objects) is an error naming its type."""
    body = response.data
    parsed = parse_json(body) if body else {}
    if not isinstance(parsed, dict):
        raise AnswerShapeError(f"HubSpot answered with a JSON {type(parsed).__name__}, not an "
                               "object; is base_url a HubSpot API?")
    return parsed, int(response.status), response.headers
