"""The Salesforce API client under the connector: simple-salesforce over one counted
requests.Session, sign-in, the one retry layer, paged queries and describe.

Authentication is the OAuth refresh-token grant (what a connected app gives a daemon);
a session that expires mid-run is refreshed once and the call repeated. Every API call
goes through one retry layer, `RetryPolicy`: 5xx answers, timeouts, dropped connections
and UNABLE_TO_LOCK_ROW become TransientError and are retried; anything else becomes a
ConnectorError whose message names the operation and Salesforce's error code, never a
credential. The session itself never retries (max_retries=0), so retries do not multiply.

Writes check the writeback fields against describe() before the first write, so a typo
in the config is one clear error instead of thousands of failed records.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple, Self, TypeVar

import requests
import structlog
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from connectors.retry import (
    DEFAULT_POLICY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    TransientError,
    retry_after_seconds,
)
from connectors.salesforce.answers import (
    QueryPage,
    Row,
    described_fields,
    first_error,
    query_page,
)
from syncer.domain.api_usage import DEFAULT_RATE_LIMIT_DEADLINE, ApiUsage
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.json_values import JSONMapping, JSONValue, as_list, objects

T = TypeVar("T")
log = structlog.get_logger(__name__)

API_VERSION = "59.0"
#: per-record SaveResult codes that may succeed when the same write is tried again.
RETRYABLE_RECORD_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE",
                                    "REQUEST_RUNNING_TOO_LONG"})
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE",
                              "REQUEST_RUNNING_TOO_LONG"})
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_REFRESH_KEYS = ("client_id", "client_secret", "refresh_token")
#: what OpenSSL says when a certificate (not the connection) is the problem
_CERTIFICATE_PROBLEM = re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|"
                                  r"hostname .* doesn't match|WRONG_VERSION_NUMBER", re.I)


class FieldInfo(NamedTuple):
    """One field of an sObject as describe() reports it (what writes need to know)."""

    name: str
    type: str
    updateable: bool
    createable: bool
    length: int = 0
    #: the allowed values of a restricted picklist; None: any value
    allowed: frozenset[str] | None = None


def field_info(described: JSONMapping) -> FieldInfo:
    """A describe() field entry as FieldInfo."""
    allowed = frozenset(str(p["value"]) for p in objects(described.get("picklistValues") or [],
                                                         "picklistValues")
                        if p.get("active", True)) \
        if described.get("restrictedPicklist") else None
    return FieldInfo(str(described["name"]), str(described["type"]),
                     bool(described["updateable"]),
                     bool(described.get("createable", described["updateable"])),
                     _whole(described.get("length")), allowed)


def _whole(value: JSONValue) -> int:
    """A describe() number (a field's length) as an int; 0 when absent."""
    return int(value) if isinstance(value, int | float | str) and value else 0


class _CountingAdapter(HTTPAdapter):
    """The transport under the session: counts each request, applies the timeout when
    the caller set none, records usage, and never retries by itself (max_retries=0)."""

    def __init__(self, timeout: float, usage: ApiUsage) -> None:
        super().__init__(max_retries=0)
        self.usage = usage
        self.default_timeout = timeout
        self.requests_made = 0
        self.last_headers: Mapping[str, str] = {}

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float, float] | tuple[float, None] | None = None,
             verify: bool | str = True,
             cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        self.requests_made += 1
        try:
            response = super().send(request, stream=stream, verify=verify, cert=cert,
                                    proxies=proxies,
                                    timeout=self.default_timeout if timeout is None else timeout)
        except requests.RequestException:
            self.usage.record_response(None)
            raise
        self.last_headers = response.headers
        self.usage.record_response(response.status_code)
        used, _, limit = response.headers.get("Sforce-Limit-Info", "").partition(
            "api-usage=")[2].partition("/")
        if used.isdigit() and limit.isdigit():
            self.usage.record_headroom(int(limit) - int(used), int(limit))
        return response


class _CountingSession(requests.Session):
    """A session over one _CountingAdapter, trusting `verify` (never the environment's
    CA bundle): what simple-salesforce is handed, and the OAuth grant's session."""

    def __init__(self, timeout: float, verify: str | bool, usage: ApiUsage | None = None) -> None:
        super().__init__()
        self.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
        self.verify = verify
        self.transport = _CountingAdapter(timeout, usage or ApiUsage())
        self.mount("https://", self.transport)
        self.mount("http://", self.transport)


class SalesforceClient:
    """Signs in, calls the API under the retry policy, pages queries, caches describe().
    The connector builds on it; it reads and writes nothing by itself."""

    def __init__(self, settings: ConnectorSettings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self._retry = retry or DEFAULT_POLICY
        self._version = str(settings.options.get("api_version", API_VERSION))
        page_size = settings.options.get("page_size")
        self._query_headers = ({"Sforce-Query-Options": f"batchSize={int(page_size)}"}
                               if page_size else {})
        #: responses by status, retries, 429s and the daily API headroom (run history,
        #: metrics), and the run's allowance of rate-limit waiting
        self.usage = ApiUsage(float(settings.options.get("rate_limit_deadline_seconds",
                                                         DEFAULT_RATE_LIMIT_DEADLINE)))
        self._session = _CountingSession(settings.timeout_seconds, settings.ca_file or True,
                                         self.usage)
        # Close pooled TLS connections even if the owner never calls close().
        self._finalizer = weakref.finalize(self, self._session.close)
        self._sf: Salesforce | None = None
        #: the User the OAuth grant signs in as (from the identity URL), if known.
        self._api_user_id: str | None = None
        self._fields: dict[str, dict[str, FieldInfo]] = {}
        self._references: dict[str, dict[str, str]] = {}
        for option, names in (("writeback_fields", settings.writeback_fields),
                              ("account_writeback_fields", settings.account_writeback_fields)):
            bad = [name for name in names if not _FIELD_NAME.match(name)]
            if bad:
                raise ConnectorError(f"connector '{self.name}': {option} {bad} are not "
                                     "Salesforce field API names")

    @property
    def api_calls(self) -> int:
        return self._session.transport.requests_made

    def close(self) -> None:
        """Close the pooled connections (also done when the connector is collected)."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- authentication and the one retry layer ----------------------------------------

    def _can_refresh(self) -> bool:
        return all(self.settings.credentials.get(key) for key in _REFRESH_KEYS)

    def _connect(self) -> Salesforce:
        if self._sf is None:
            credentials = self.settings.credentials
            if self._can_refresh():
                token, instance_url = self._refresh_token()
            elif credentials.get("session_id"):
                token = credentials["session_id"]
                instance_url = credentials.get("instance_url") or self.settings.base_url
            else:
                raise ConnectorError(
                    f"connector '{self.name}': Salesforce credentials need client_id, "
                    "client_secret and refresh_token (or a session_id)")
            self._sf = Salesforce(instance_url=instance_url, session_id=token,
                                  version=self._version, session=self._session)
        return self._sf

    def _refresh_token(self) -> tuple[str, str]:
        """The OAuth refresh-token grant: (access token, instance URL)."""
        credentials = self.settings.credentials
        url = self.settings.base_url.rstrip("/") + "/services/oauth2/token"
        form = {"grant_type": "refresh_token",
                **{key: credentials[key] for key in _REFRESH_KEYS}}
        try:
            response = self._session.post(url, data=form)
        except requests.exceptions.SSLError as error:
            raise self._tls_error(error) from error
        except requests.RequestException as error:
            raise TransientError(f"Salesforce token request failed: {type(error).__name__}") \
                from error
        if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
            raise TransientError("Salesforce token endpoint unavailable",
                                 status=response.status_code,
                                 retry_after=retry_after_seconds(response.headers))
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            code, description = first_error(body)
            raise ConnectorError(
                f"connector '{self.name}': Salesforce refused the OAuth refresh token "
                f"(HTTP {response.status_code}, {code}: {description}); check client_id, "
                "client_secret and refresh_token")
        log.info("salesforce.session_refreshed", connector=self.name)
        identity = str(body.get("id") or "")
        self._api_user_id = identity.rstrip("/").rsplit("/", 1)[-1] or None
        return str(body["access_token"]), str(body.get("instance_url") or
                                                 self.settings.base_url)

    def _tls_error(self, error: requests.exceptions.SSLError) -> Exception:
        """A certificate that does not verify is for the admin to fix (ca_file); any other
        TLS failure (a handshake cut short by a busy server) is worth trying again."""
        if not _CERTIFICATE_PROBLEM.search(str(error)):
            return TransientError(f"Salesforce TLS handshake with {self.settings.base_url} "
                                  "failed")
        return ConnectorError(f"connector '{self.name}': TLS verification of "
                              f"{self.settings.base_url} failed; check ca_file")

    def _call(self, operation: str, fn: Callable[[Salesforce], T]) -> T:
        """Run one API call under the retry policy, refreshing an expired session once."""
        def attempt() -> T:
            try:
                try:
                    return fn(self._connect())
                except SalesforceExpiredSession:
                    if not self._can_refresh():
                        raise ConnectorError(
                            f"connector '{self.name}': the Salesforce session expired and "
                            "no refresh token is configured") from None
                    self._sf = None
                    try:
                        return fn(self._connect())
                    except SalesforceExpiredSession:
                        # Revoked again straight after the refresh (an org revoking
                        # sessions, a race with another client): try again later, with a
                        # new refresh, under the retry policy instead of failing the run.
                        self._sf = None
                        raise TransientError(f"Salesforce {operation}: session expired "
                                             "again right after a refresh", status=401) \
                            from None
            except requests.exceptions.SSLError as error:
                raise self._tls_error(error) from error
            except requests.RequestException as error:
                raise TransientError(f"Salesforce {operation}: {type(error).__name__}") \
                    from error
            except SalesforceError as error:
                raise self._classify(operation, error) from error
        return self._retry.call(attempt, usage=self.usage)

    def _classify(self, operation: str, error: SalesforceError) -> Exception:
        code, message = first_error(error.content)
        # REQUEST_LIMIT_EXCEEDED is a rate limit for the concurrent-request cap (it clears
        # in seconds: wait, spending no attempt) but final for the daily allocation
        # ("TotalRequests Limit exceeded").
        concurrent = code == "REQUEST_LIMIT_EXCEEDED" and "Concurrent" in message
        if error.status in RETRYABLE_STATUSES or error.status >= 500 or \
                code in _TRANSIENT_CODES or concurrent:
            return TransientError(f"Salesforce {operation}: HTTP {error.status} {code}",
                                  status=error.status,
                                  retry_after=retry_after_seconds(self._session.transport.last_headers),
                                  rate_limited=error.status == 429 or concurrent)
        return ConnectorError(f"connector '{self.name}': Salesforce {operation} failed "
                              f"(HTTP {error.status}, {code}): {message}")

    # -- reading -----------------------------------------------------------------------

    def _pages(self, operation: str, query: str, *, include_deleted: bool = False,
               first: QueryPage | None = None) -> Iterator[list[Row]]:
        """Every page of a query (queryAll with `include_deleted`: deleted rows too),
        following nextRecordsUrl; a repeated URL stops with an error instead of looping
        forever. `first`: the query's first page, already read."""
        headers = self._query_headers
        result = first if first is not None else query_page(self._call(
            operation, lambda sf: sf.query(query, include_deleted=include_deleted,
                                           headers=headers)), operation)
        seen: set[str] = set()
        while True:
            yield result["records"]
            next_url = result.get("nextRecordsUrl")
            if result["done"] or not next_url:
                return
            if next_url in seen:
                raise ConnectorError(f"connector '{self.name}': Salesforce repeated the "
                                     f"page {next_url} of a {operation} query")
            seen.add(next_url)

            def more(sf: Salesforce, url: str = next_url) -> object:
                return sf.query_more(url, identifier_is_url=True, headers=headers)
            result = query_page(self._call(operation, more), operation)

    def _describe(self, object_type: str) -> dict[str, FieldInfo]:
        """lower-case field name -> FieldInfo, cached per connector."""
        if object_type not in self._fields:
            described = self._call("describe", lambda sf: sf.restful(
                f"sobjects/{object_type}/describe"))
            fields = described_fields(described, f"describe of {object_type}")
            self._fields[object_type] = {str(f["name"]).lower(): field_info(f) for f in fields}
            # relationship name -> the object it points at (Bulk 2.0 CSV types, bulk.py)
            self._references[object_type] = {
                str(f["relationshipName"]).lower(): str(as_list(f["referenceTo"])[0])
                for f in fields if f.get("relationshipName") and f.get("referenceTo")}
        return self._fields[object_type]

    def writeback_of(self, object_type: str) -> tuple[str, ...]:
        """The fields syncer writes on `object_type`: the account writeback fields on an
        Account, the (person) writeback fields on anything else."""
        return self.settings.account_writeback_fields if object_type == "Account" \
            else self.settings.writeback_fields

    def _check_writeback(self, object_type: str) -> dict[str, tuple[str, str]]:
        """Every field of `object_type` as lower name -> (name, type), after checking
        each field syncer writes there (writeback_of) exists and is writable (a config
        error otherwise)."""
        fields = self._describe(object_type)
        wanted = self.writeback_of(object_type)
        setting = "account_writeback_fields" if object_type == "Account" else "writeback_fields"
        missing = [f for f in wanted if f.lower() not in fields]
        readonly = [f for f in wanted if f.lower() in fields and not fields[f.lower()].updateable]
        if missing or readonly:
            problems = ([f"no field {missing}"] if missing else []) + \
                ([f"read-only {readonly}"] if readonly else [])
            fix = (". Fix: `syncer setup` creates the missing custom fields (or correct "
                   "the names in the config)") if missing else ""
            raise ConnectorError(f"connector '{self.name}': Salesforce {object_type} has "
                                 f"{' and '.join(problems)} listed in {setting}{fix}")
        return {name: (spec.name, spec.type) for name, spec in fields.items()}
