"""Full pulls through Bulk API 2.0 query jobs, above a size where REST paging gets slow.

A full pull (no `since`) starts as a REST query, whose first page says how many records
there are (`totalSize`); more than `bulk_query_threshold` (config, default 10,000) and that
page is dropped (one call spent, as a COUNT() would) and one Bulk 2.0 query job reads them
instead of REST pages of 2,000: create the job, poll it until JobComplete, then read
its CSV result sets of `bulk_max_records` (default 10,000: a set is parsed and stored as
one page, so its size sets the peak memory of a large pull) following `Sforce-Locator`.
Incremental pulls stay on REST query. simple-salesforce's `bulk2` client makes each call
(its `query()` hides the job id, so the steps are called one by one), under the client's
one retry layer.

Every job is closed on every path: read to the end, failed, stopped (the pipeline drops the
page iterator: its `finally` aborts a running job and deletes it) and killed. For the kill,
the job id goes into the state (a `QueryJobLedger`, syncer/store/bulk_jobs.py, handed over
by the wiring) before the first poll; the next pull aborts and deletes whatever a dead run
left there.

CSV values are typed back by describe() (booleans, numbers, datetimes in the REST format,
empty as null, `Account.Name` as a nested record), so mapping.to_person sees the same record
REST query would give it and the Person is identical.
"""

from __future__ import annotations

import contextlib
import csv
import io
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol, cast

import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation, QueryResult, SFBulk2Handler, _Bulk2Client
from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound

from connectors.retry import RetryPolicy
from connectors.salesforce import mapping
from connectors.salesforce.answers import Row, bulk_job, query_page
from connectors.salesforce.client import SalesforceClient
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.json_values import JSONObject, JSONValue, as_object
from syncer.domain.types import Succession

log = structlog.get_logger(__name__)

DEFAULT_BULK_THRESHOLD = 10_000
DEFAULT_MAX_RECORDS = 10_000
#: first wait between polls (doubling up to MAX_POLL_SECONDS), and the longest a job may run
DEFAULT_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
DEFAULT_JOB_TIMEOUT = 3600.0
ACTIVE_STATES = frozenset({"UploadComplete", "InProgress", "Open"})
_NUMBERS = frozenset({"double", "currency", "percent"})


class QueryJobLedger(Protocol):
    """Where a connector remembers its open Bulk query jobs across processes (the state)."""

    def open_jobs(self) -> list[str]:
        """Job ids remembered and not yet forgotten (a killed run's among them)."""
        ...

    def remember(self, job_id: str) -> None:
        ...

    def forget(self, job_id: str) -> None:
        ...


class BulkQueryFailed(ConnectorError):
    """A Bulk API 2.0 query job ended Failed or Aborted, or ran past its time."""


class BulkQueries(SalesforceClient):
    """SalesforceClient with full pulls through Bulk API 2.0 query jobs."""

    def __init__(self, settings: ConnectorSettings, *, retry: RetryPolicy | None = None
                 ) -> None:
        super().__init__(settings, retry=retry)
        self._ledger: QueryJobLedger | None = None
        #: set by close(): a poll in progress stops waiting (and its job is aborted)
        self._stopping = threading.Event()
        #: successions an incremental people() met, by its `since` (echo_reads.py)
        self.met_successions: dict[datetime, list[Succession]] = {}

    def keep_query_jobs(self, ledger: QueryJobLedger) -> None:
        """Remember open query jobs in `ledger` (the state), so a killed run's job is
        aborted by the next run. Without one, jobs are still closed by this process."""
        self._ledger = ledger

    @property
    def bulk_threshold(self) -> int:
        return int(self.settings.options.get("bulk_query_threshold",
                                             DEFAULT_BULK_THRESHOLD))

    def _option(self, name: str, default: float) -> float:
        return float(self.settings.options.get(name, default))

    # -- choosing REST or Bulk ---------------------------------------------------------

    def _missing_person_fields(self, object_type: str, mapped: dict[str, str]) -> list[str]:
        """One actionable line per mapped person field this object lacks (by describe)."""
        described = self._describe(object_type)
        return [f"connector '{self.name}': Salesforce {object_type} has no field '{crm}' "
                f"(person field '{name}'). Fix: correct connectors[].person_fields.{name} "
                f"(the API name Setup shows, e.g. Occupation__c), grant the integration user "
                f"read access to it, or set `{name}: null` to drop a default mapping"
                for name, crm in mapping.missing_fields(mapped, described)]

    def _people_pages(self, object_type: str, query: str, *, full: bool,
                      operation: str = "people") -> Iterator[list[Row]]:
        """The records of a people (or accounts) query, a page at a time: by a Bulk 2.0
        job on a full pull of more than the threshold, else by REST query. Jobs a dead run
        left open are closed first."""
        self._settle_left_jobs()
        if not full:
            yield from self._pages(operation, query)
            return
        headers = self._query_headers
        first = query_page(self._call(operation, lambda sf: sf.query(query, headers=headers)),
                           operation)
        total = first["totalSize"]
        if total <= self.bulk_threshold:
            yield from self._pages(operation, query, first=first)
            return
        # The first REST page only told the size: one call, dropped, instead of a COUNT().
        log.info("salesforce.bulk_query", connector=self.name, object=object_type,
                 records=total)
        yield from self._bulk_pages(object_type, query)

    # -- one job, closed on every path -------------------------------------------------

    def _jobs(self, sf: Salesforce, object_type: str) -> _Bulk2Client:
        handler = cast(SFBulk2Handler, sf.bulk2)
        return _Bulk2Client(object_type, handler.bulk2_url, handler.headers, handler.session)

    def _bulk_pages(self, object_type: str, query: str) -> Iterator[list[Row]]:
        return (records for records, _, _ in self._bulk_sets(object_type, query))

    def _bulk_sets(self, object_type: str, query: str, job: str | None = None,
                   locator: str = "") -> Iterator[tuple[list[Row], str, str]]:
        """Each result set with the job id and the locator of the next ("": the last).
        With `job` (complete, left open by a killed run) reading goes on at `locator`."""
        if job is None:
            info = bulk_job(self._call("bulk query", lambda sf: self._jobs(sf, object_type)
                                       .create_job(Operation.query, query)), "bulk query")
            job_id, state = info["id"], info["state"] or "UploadComplete"
        else:
            job_id, state = job, "InProgress"
        try:
            if self._ledger is not None and job is None:
                self._ledger.remember(job_id)
            state = self._wait(object_type, job_id)
            seen: set[str] = set()
            size = int(self._option("bulk_max_records", DEFAULT_MAX_RECORDS))
            while True:
                def read(sf: Salesforce, at: str = locator) -> QueryResult:
                    return self._jobs(sf, object_type).get_query_results(job_id, at, size)
                result = self._call("bulk query", read)
                locator = str(result.get("locator") or "")
                yield self._records(object_type, str(result.get("records") or "")), job_id, \
                    locator
                if not locator:
                    return
                if locator in seen:
                    raise ConnectorError(f"connector '{self.name}': Salesforce repeated the "
                                         f"result set {locator} of Bulk query job {job_id}")
                seen.add(locator)
        finally:
            self._close_job(object_type, job_id, state)

    def _wait(self, object_type: str, job_id: str) -> str:
        """Poll until JobComplete (returned); Failed or Aborted raise BulkQueryFailed."""
        delay = self._option("bulk_poll_seconds", DEFAULT_POLL_SECONDS)
        deadline = time.monotonic() + self._option("bulk_job_timeout_seconds",
                                                   DEFAULT_JOB_TIMEOUT)
        while True:
            info = bulk_job(self._call("bulk query", lambda sf: self._jobs(sf, object_type)
                                       .get_job(job_id, True)), "bulk query")
            state = str(info["state"])
            if state == "JobComplete":
                return state
            if state in ("Failed", "Aborted"):
                raise BulkQueryFailed(
                    f"connector '{self.name}': the Salesforce Bulk API 2.0 query job {job_id} "
                    f"({object_type}) ended {state}: {info['errorMessage'] or 'no reason'}"
                    ". The next full pull tries again; check Setup > Bulk Data Load Jobs, or "
                    "raise bulk_query_threshold to pull by REST query")
            if time.monotonic() > deadline:
                raise BulkQueryFailed(f"connector '{self.name}': the Salesforce Bulk API 2.0 "
                                      f"query job {job_id} ({object_type}) was still {state} "
                                      "at bulk_job_timeout_seconds; it is aborted")
            if self._stopping.wait(delay):
                raise ConnectorError(f"connector '{self.name}': closed while Bulk query job "
                                     f"{job_id} ran; it is aborted")
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def _close_job(self, object_type: str, job_id: str, state: str) -> None:
        """Abort a job still running, delete it, forget it. A failure here is logged and
        the job stays remembered: the next pull closes it."""
        def close(sf: Salesforce) -> None:
            jobs = self._jobs(sf, object_type)
            try:
                if state not in ("JobComplete", "Failed", "Aborted"):
                    try:
                        jobs.abort_job(job_id, True)
                    except SalesforceError as error:  # finished meanwhile: delete it
                        if getattr(error, "status", 0) != 400:
                            raise
                # 204 No Content: simple-salesforce parses a body there is none of
                with contextlib.suppress(requests.exceptions.JSONDecodeError):
                    jobs.delete_job(job_id, True)
            except SalesforceResourceNotFound:
                pass  # already gone
        try:
            self._call("bulk query close", close)
        except Exception as error:  # never mask why the pull ended
            log.warning("salesforce.bulk_job_left_open", connector=self.name, job=job_id,
                        error=type(error).__name__)
            return
        if self._ledger is not None:
            try:
                self._ledger.forget(job_id)
            except Exception as error:  # e.g. the run lost its lock: the next run finds
                log.warning("salesforce.bulk_job_not_forgotten",  # the job gone (404)
                            connector=self.name, job=job_id, error=type(error).__name__)
        log.info("salesforce.bulk_job_closed", connector=self.name, job=job_id, state=state)

    def _job_state(self, job_id: str) -> str | None:
        """A query job's state, None when Salesforce no longer has it."""
        def state_of(sf: Salesforce) -> str | None:
            try:
                return str(bulk_job(self._jobs(sf, "").get_job(job_id, True),
                                    "bulk query close")["state"])
            except SalesforceResourceNotFound:
                return None
        return self._call("bulk query close", state_of)

    def _settle_left_jobs(self, keep: str | None = None) -> None:
        """Abort and delete the jobs a run that died left open (found in the ledger),
        except `keep`: the job a resumed full pull goes on reading."""
        if self._ledger is None:
            return
        for job_id in self._ledger.open_jobs():
            if job_id == keep:
                continue
            state = self._job_state(job_id)
            if state is None:
                self._ledger.forget(job_id)
                continue
            log.info("salesforce.bulk_job_left_by_dead_run", connector=self.name, job=job_id,
                     state=state)
            self._close_job("", job_id, state)

    def close(self) -> None:
        """Wake a poll in progress (its job is aborted), then close connections."""
        self._stopping.set()
        super().close()

    # -- CSV back to REST-shaped records -----------------------------------------------

    def _records(self, object_type: str, text: str) -> list[Row]:
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if not header:
            return []
        kinds = [self._field_type(object_type, column) for column in header]
        paths = [column.split(".") for column in header]
        records = []
        for row in rows:
            record: JSONObject = {}
            for path, kind, raw in zip(paths, kinds, row, strict=True):
                _place(record, path, _typed(kind, raw))
            records.append(_nulls(record))
        return records

    def _field_type(self, object_type: str, column: str) -> str:
        """The describe() type of a CSV column (Account.Name through the relationship)."""
        *hops, leaf = column.lower().split(".")
        current = object_type
        for hop in hops:
            self._describe(current)
            target = self._references.get(current, {}).get(hop)
            if target is None:
                return "string"
            current = target
        info = self._describe(current).get(leaf)
        return info.type if info is not None else "string"


def _typed(kind: str, raw: str) -> JSONValue:
    """A CSV value as REST's JSON gives it: empty -> None, by describe() type."""
    if raw == "":
        return None
    if kind == "boolean":
        return raw.lower() == "true"
    if kind == "int":
        return int(float(raw))
    if kind in _NUMBERS:
        return float(raw)
    if kind == "datetime" and raw.endswith("Z"):
        return raw[:-1] + "+0000"  # REST's format: ...000+0000
    return raw


def _place(record: JSONObject, path: list[str], value: JSONValue) -> None:
    for part in path[:-1]:
        record = as_object(record.setdefault(part, {}), ".".join(path))
    record[path[-1]] = value


def _nulls(record: JSONObject) -> JSONObject:
    """A related record with every field empty is null, as REST renders a missing parent."""
    for key, value in record.items():
        if isinstance(value, dict):
            inner = _nulls(value)
            record[key] = inner if any(v is not None for v in inner.values()) else None
    return record
