"""The Salesforce connector: simple-salesforce over one counted requests.Session.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import requests
import structlog
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from connectors.base import ConnectorError, ConnectorSettings
from connectors.salesforce import mapping, soql
from syncer.domain import Activity, Owner, Person, PushResult, RecordUpdate
from syncer.ratelimit import (
    DEFAULT_POLICY,
    RETRYABLE_STATUSES,
    ApiUsage,
    RetryPolicy,
    TransientError,
    retry_after_seconds,
)

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


class _CountingSession(requests.Session):
    """A session that counts requests, applies the timeout and never retries by itself."""

    def __init__(self, timeout: float, verify: str | bool, usage: ApiUsage | None = None) -> None:
        super().__init__()
        self.usage = usage or ApiUsage()
        self.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
        self.verify = verify
        self.default_timeout = timeout
        self.requests_made = 0
        self.last_headers: Mapping[str, str] = {}
        adapter = HTTPAdapter(max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str, url: str,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.default_timeout)
        self.requests_made += 1
        try:
            response = super().request(method, url, *args, **kwargs)
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


def _first_error(content: Any) -> tuple[str, str]:
    """(errorCode, message) from a Salesforce error body (a list of errors, or text)."""
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        return str(first.get("errorCode", "UNKNOWN")), str(first.get("message", ""))
    if isinstance(content, Mapping):
        return str(content.get("error", "UNKNOWN")), str(content.get("error_description", ""))
    return "UNKNOWN", ""


class SalesforceConnector:
    """Reads Leads, Contacts, campaign and web activity; writes fields back in batches."""

    max_batch = 200

    def __init__(self, settings: ConnectorSettings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self._retry = retry or DEFAULT_POLICY
        self._version = str(settings.options.get("api_version", API_VERSION))
        page_size = settings.options.get("page_size")
        self._query_headers = ({"Sforce-Query-Options": f"batchSize={int(page_size)}"}
                               if page_size else {})
        #: responses by status, retries, 429s and the daily API headroom (run history, metrics)
        self.usage = ApiUsage()
        self._session = _CountingSession(settings.timeout_seconds, settings.ca_file or True,
                                         self.usage)
        # Close pooled TLS connections even if the owner never calls close().
        self._finalizer = weakref.finalize(self, self._session.close)
        self._sf: Salesforce | None = None
        #: the User the OAuth grant signs in as (from the identity URL), if known.
        self._api_user_id: str | None = None
        self._fields: dict[str, dict[str, tuple[str, str, bool]]] = {}
        bad = [name for name in settings.writeback_fields if not _FIELD_NAME.match(name)]
        if bad:
            raise ConnectorError(f"connector '{self.name}': writeback_fields {bad} are not "
                                 "Salesforce field API names")

    @property
    def api_calls(self) -> int:
        return self._session.requests_made

    def close(self) -> None:
        """Close the pooled connections (also done when the connector is collected)."""
        self._finalizer()

    def __enter__(self) -> SalesforceConnector:
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
            raise self._tls_error() from error
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
            code, description = _first_error(body)
            raise ConnectorError(
                f"connector '{self.name}': Salesforce refused the OAuth refresh token "
                f"(HTTP {response.status_code}, {code}: {description}); check client_id, "
                "client_secret and refresh_token")
        log.info("salesforce.session_refreshed", connector=self.name)
        identity = str(body.get("id") or "")
        self._api_user_id = identity.rstrip("/").rsplit("/", 1)[-1] or None
        return str(body["access_token"]), str(body.get("instance_url") or
                                                 self.settings.base_url)

    def _tls_error(self) -> ConnectorError:
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
                raise self._tls_error() from error
            except requests.RequestException as error:
                raise TransientError(f"Salesforce {operation}: {type(error).__name__}") \
                    from error
            except SalesforceError as error:
                raise self._classify(operation, error) from error
        return self._retry.call(attempt, usage=self.usage)

    def _classify(self, operation: str, error: SalesforceError) -> Exception:
        code, message = _first_error(error.content)
        # REQUEST_LIMIT_EXCEEDED is transient for the concurrent-request cap (it clears in
        # seconds) but final for the daily allocation ("TotalRequests Limit exceeded").
        concurrent = code == "REQUEST_LIMIT_EXCEEDED" and "Concurrent" in message
        if error.status in RETRYABLE_STATUSES or error.status >= 500 or \
                code in _TRANSIENT_CODES or concurrent:
            return TransientError(f"Salesforce {operation}: HTTP {error.status} {code}",
                                  status=error.status,
                                  retry_after=retry_after_seconds(self._session.last_headers))
        return ConnectorError(f"connector '{self.name}': Salesforce {operation} failed "
                              f"(HTTP {error.status}, {code}): {message}")

    # -- reading -----------------------------------------------------------------------

    def _pages(self, operation: str, query: str) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query, following nextRecordsUrl; a repeated URL stops with an
        error instead of looping forever."""
        headers = self._query_headers
        result = self._call(operation, lambda sf: sf.query(query, headers=headers))
        seen: set[str] = set()
        while True:
            yield list(result.get("records", []))
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            if next_url in seen:
                raise ConnectorError(f"connector '{self.name}': Salesforce repeated the "
                                     f"page {next_url} of a {operation} query")
            seen.add(next_url)

            def more(sf: Salesforce, url: str = next_url) -> Any:
                return sf.query_more(url, identifier_is_url=True, headers=headers)
            result = self._call(operation, more)

    def _describe(self, object_type: str) -> dict[str, tuple[str, str, bool]]:
        """lower-case field name -> (name, type, updateable), cached per connector."""
        if object_type not in self._fields:
            described = self._call("describe", lambda sf: sf.restful(
                f"sobjects/{object_type}/describe"))
            self._fields[object_type] = {
                str(f["name"]).lower(): (str(f["name"]), str(f["type"]), bool(f["updateable"]))
                for f in (described or {}).get("fields", [])}
        return self._fields[object_type]

    def _check_writeback(self, object_type: str) -> dict[str, tuple[str, str]]:
        """The writeback fields of `object_type` as lower name -> (name, type), after
        checking each exists and is writable (a config error otherwise)."""
        fields = self._describe(object_type)
        missing = [f for f in self.settings.writeback_fields if f.lower() not in fields]
        readonly = [f for f in self.settings.writeback_fields
                    if f.lower() in fields and not fields[f.lower()][2]]
        if missing or readonly:
            problems = ([f"no field {missing}"] if missing else []) + \
                ([f"read-only {readonly}"] if readonly else [])
            raise ConnectorError(f"connector '{self.name}': Salesforce {object_type} has "
                                 f"{' and '.join(problems)} listed in writeback_fields")
        return {name: (spec[0], spec[1]) for name, spec in fields.items()}

    def people(self, since: datetime | None = None) -> Iterator[list[Person]]:
        """Leads (not converted) and Contacts; with `since`, only those whose
        SystemModstamp is at or after it (incremental pulls)."""
        writeback = self.settings.writeback_fields
        for object_type in mapping.PERSON_OBJECTS:
            self._check_writeback(object_type)
            fields = ", ".join(mapping.person_fields(object_type, writeback))
            conditions = ["IsConverted = false"] if object_type == "Lead" else []
            if since is not None:
                conditions.append(f"SystemModstamp >= {soql.datetime_literal(since)}")
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            query = f"SELECT {fields} FROM {object_type}{where}"
            for records in self._pages("people", query):
                yield [mapping.to_person(self.name, object_type, record, writeback)
                       for record in records]

    def activities(self, since: datetime) -> Iterator[list[Activity]]:
        after = soql.datetime_literal(since)
        sources: tuple[tuple[str, tuple[str, ...], str, Callable[..., Activity | None]], ...] = (
            ("CampaignMember", mapping.CAMPAIGN_MEMBER_FIELDS, "",
             mapping.campaign_member_activity),
            ("Task", mapping.TASK_FIELDS, " AND WhoId != null", mapping.task_activity))
        for object_type, fields, extra, to_activity in sources:
            query = (f"SELECT {', '.join(fields)} FROM {object_type} WHERE CreatedDate >= "
                     f"{after}{extra} ORDER BY CreatedDate, Id")
            for records in self._pages("activities", query):
                page = [a for a in (to_activity(self.name, r) for r in records) if a]
                if page:
                    yield page

    def owners(self) -> list[Owner]:
        """Standard users, except the API user syncer signs in as: an integration user is
        no rep, so records it owns (created through the API) count as not yet routed."""
        query = ("SELECT Id, Email, Name, IsActive FROM User WHERE UserType = "
                 f"{soql.quote('Standard')} ORDER BY Id")
        return [Owner(source=self.name, owner_id=str(r["Id"]), email=str(r.get("Email") or ""),
                      name=str(r.get("Name") or ""), active=bool(r.get("IsActive")))
                for page in self._pages("owners", query) for r in page
                if r["Id"] != self._api_user_id]

    # -- writing -----------------------------------------------------------------------

    def push(self, updates: Sequence[RecordUpdate]) -> list[PushResult]:
        results: list[PushResult | None] = [None] * len(updates)
        bodies: list[tuple[int, dict[str, Any]]] = []
        types = {u.object_type: self._check_writeback(u.object_type) for u in updates}
        for index, update in enumerate(updates):
            unknown = [n for n in update.values if n.lower() not in types[update.object_type]]
            try:
                if unknown:
                    raise ValueError(f"no field {unknown} on {update.object_type}")
                bodies.append((index, mapping.api_record(update, types[update.object_type])))
            except ValueError as error:
                results[index] = PushResult(update.record_id, ok=False,
                                            error_code="INVALID_VALUE", message=str(error))
        # Group by type: one request may hold at most 10 runs of consecutive types.
        bodies.sort(key=lambda item: updates[item[0]].object_type)
        for start in range(0, len(bodies), self.max_batch):
            self._push_chunk(updates, bodies[start:start + self.max_batch], results)
        failed = sum(1 for r in results if r is not None and not r.ok)
        log.info("salesforce.push", connector=self.name, records=len(updates), failed=failed)
        return [r for r in results if r is not None]

    def _push_chunk(self, updates: Sequence[RecordUpdate],
                    chunk: list[tuple[int, dict[str, Any]]],
                    results: list[PushResult | None]) -> None:
        payload = {"allOrNone": False, "records": [body for _, body in chunk]}
        saved = self._call("push", lambda sf: sf.restful(
            "composite/sobjects", method="PATCH", json=payload))
        if not isinstance(saved, list) or len(saved) != len(chunk):
            raise ConnectorError(f"connector '{self.name}': Salesforce answered "
                                 f"{len(saved) if isinstance(saved, list) else 'no'} results "
                                 f"for {len(chunk)} records")
        for (index, _), outcome in zip(chunk, saved, strict=True):
            record_id = updates[index].record_id
            if outcome.get("success"):
                results[index] = PushResult(record_id, ok=True)
                continue
            errors = outcome.get("errors") or [{}]
            code = str(errors[0].get("statusCode", "UNKNOWN"))
            message = "; ".join(str(e.get("message", "")) for e in errors)
            results[index] = PushResult(record_id, ok=False, error_code=code, message=message,
                                        retryable=code in RETRYABLE_RECORD_CODES)
