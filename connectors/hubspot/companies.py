"""HubSpot companies: read as syncer Accounts, written back by batch update (issue 20).

An incremental pull searches `hs_lastmodifieddate >= since` with the contacts' walk
(search.py: pages of 200 in id order, a new query from the last id before the 10,000
cap), so it costs ceil(N/200) search requests for N changed companies; a full pull lists
them (100 a page). A company's owner email comes from the owners list the connector
reads once per sync, never a request per company. Writes go through the contacts' batch
update code (batch_writes.py) on the companies batch API: the same retries, 207 handling,
bisection of a refused batch and error codes. Every request goes through the connector's
ApiCalls (calls.py); each company is read by answers.crm_object where it arrives.

The batch update answers carry each company's new updatedAt: the echo window of a run's
company writes (syncer/run/echo.py) costs no request, and an incremental pull leaves it
out with one more search filter group, as the contacts pull does.

The accounts' reconciliation sweep (syncer/run/account_sweep.py) reads every company in
id order, one search request of 200 a page (`sweep_page`), each page a query of its own
from the last id (search.py's records_after), so the 10,000 cap never applies and a pass
stopped by its call budget resumes by id. Search, not the list API: 200 a call, not 100.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import structlog
from hubspot import HubSpot  # type: ignore[import-untyped]
from hubspot.crm.contacts import PublicObjectSearchRequest  # type: ignore[import-untyped]

from connectors.hubspot.answers import CrmObject, Page, crm_object, page
from connectors.hubspot.batch_writes import ContactWrites
from connectors.hubspot.calls import ApiCalls
from connectors.hubspot.company_mapping import (
    COMPANY_OBJECT,
    COMPANY_PROPERTIES,
    COMPANY_STAMP,
    to_account,
)
from connectors.hubspot.mapping import as_utc
from connectors.hubspot.raw import GeneratedApi, RawResponse, answer
from connectors.hubspot.search import SEARCH_LIMIT, modified_since, newest_stamp, records_after
from connectors.retry import RetryPolicy
from syncer.domain.accounts import Account
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import Owner, PushResult, RecordUpdate

log = structlog.get_logger(__name__)

#: the companies list API's largest page
LIST_PAGE = 100
#: companies per sweep page: the search API's largest page
SWEEP_PAGE = SEARCH_LIMIT


class CompanyListApi(GeneratedApi, Protocol):
    """The client's companies basic API, as syncer calls it (raw answers, raw.py)."""

    def get_page_with_http_info(self, **options: object) -> RawResponse: ...


class CompanySearchApi(GeneratedApi, Protocol):
    """The client's companies search API, as syncer calls it (raw answers, raw.py)."""

    def do_search_with_http_info(self, *, public_object_search_request: object,
                                 **options: object) -> RawResponse: ...


class CompanyReader:
    """Companies in (search or list API) and out (batch update API) for one connector."""

    def __init__(self, client: HubSpot, settings: ConnectorSettings, calls: ApiCalls, *,
                 retry: RetryPolicy, search_cap: int, search_wait: Callable[[], None],
                 read_owners: Callable[[], list[Owner]]) -> None:
        self._settings = settings
        self._calls = calls
        self._cap = search_cap
        self._search_wait = search_wait
        self._read_owners = read_owners
        #: owner id -> email, from the connector's last owners() read (known_owners)
        self._owner_emails: dict[str, str] | None = None
        self._timeout = settings.timeout_seconds
        self._basic: CompanyListApi = client.crm.companies.basic_api
        self._search: CompanySearchApi = client.crm.companies.search_api
        #: companies batch update (the API object is `writes.batch`)
        self.writes = ContactWrites(calls.call, client.crm.companies.batch_api, self._timeout,
                                    retry, calls.usage, object_type=COMPANY_OBJECT)

    def known_owners(self, owners: Sequence[Owner]) -> None:
        """The owners the connector just read (the pipeline reads them once per sync):
        companies name their owner's email from these, at no request of their own."""
        self._owner_emails = {o.owner_id: o.email for o in owners if o.email}

    def _emails(self) -> Mapping[str, str]:
        if self._owner_emails is None:  # owners() not read yet on this connector
            self._read_owners()
        return self._owner_emails or {}

    @property
    def apis(self) -> tuple[GeneratedApi, ...]:
        return self._basic, self._search, self.writes.batch

    def fields(self) -> list[str]:
        """The company properties a pull asks for: the mapped ones and the account
        write-back fields."""
        return list(dict.fromkeys([*COMPANY_PROPERTIES,
                                   *self._settings.account_writeback_fields]))

    def accounts(self, since: datetime | None,
                 skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Account]]:
        """Every company (list API), or with `since` those modified at or after it
        (search API, around its 10,000-result cap), a page at a time; an incremental
        pull leaves out the companies stamped in any (start, end] of `skip` (the
        stretches of syncer's own writes: one more filter group each)."""
        fields = self.fields()
        pages: Iterator[list[CrmObject]]
        if since is not None:
            pages = modified_since(as_utc(since), fields, self._do_search, stamp=COMPANY_STAMP,
                                   cap=self._cap,
                                   skip=[(as_utc(a), as_utc(b)) for a, b in skip])
        else:
            pages = self._calls.pages("companies.list", lambda after: self._basic
                                      .get_page_with_http_info(
                                          limit=LIST_PAGE, after=after, properties=fields,
                                          archived=False, _preload_content=False,
                                          _request_timeout=self._timeout), crm_object)
        checked = False
        for companies in pages:
            if not companies:
                continue
            yield self._mapped(companies, check=not checked)
            checked = True

    def sweep_page(self, position: str | None) -> tuple[list[Account], str | None]:
        """One page (one search request) of companies in id order after `position` (the
        last id read; None: from the start), and where the next page starts (None: the
        listing is done)."""
        found, last = records_after(int(position or 0), self.fields(), self._do_search,
                                    limit=SWEEP_PAGE)
        return (self._mapped(found, check=True) if found else [],
                None if last is None else str(last))

    def _mapped(self, companies: Sequence[CrmObject], *, check: bool) -> list[Account]:
        """Companies as Accounts; with `check`, the first one's properties are checked
        against the write-back fields (a read's first page: no request of its own)."""
        if check:
            self._refuse_missing(companies[0]["properties"])
        emails = self._emails()  # the owners read once per connector, then kept
        return [to_account(self._settings.name, company,
                           self._settings.account_writeback_fields, emails)
                for company in companies]

    def newest_stamp(self) -> datetime | None:
        """The newest company modification time in the portal (one search request)."""
        return newest_stamp(self._do_search, COMPANY_STAMP)

    def take_write_window(self) -> tuple[datetime, datetime] | None:
        """The earliest and latest stamps HubSpot gave the company writes since the last
        call (from the batch answers' updatedAt: no request), then forgotten."""
        told, self.writes.stamps = self.writes.stamps, None
        return told

    def _refuse_missing(self, returned: Mapping[str, object]) -> None:
        """Stop before scoring accounts whose write-back fields the portal lacks (every
        write would fail): HubSpot leaves out a property it does not have."""
        missing = [name for name in self._settings.account_writeback_fields
                   if name not in returned]
        if missing:
            raise ConnectorError(
                f"connector '{self._settings.name}': HubSpot has no company properties "
                f"{', '.join(missing)} (the account fields syncer writes). Fix: `syncer "
                "setup` creates them, or correct the names")

    def _do_search(self, request: PublicObjectSearchRequest) -> Page[CrmObject]:
        self._search_wait()
        body, _ = self._calls.call("companies.search", lambda: answer(
            self._search.do_search_with_http_info(public_object_search_request=request,
                                                  _preload_content=False,
                                                  _request_timeout=self._timeout)))
        return page(body, "companies.search", crm_object)


def push_records(updates: Sequence[RecordUpdate], contacts: ContactWrites,
                 companies: ContactWrites, max_batch: int, connector: str
                 ) -> list[PushResult]:
    """Write contact and company updates, each in batches of `max_batch` through its own
    batch API; one result per update, in order. Updates of one record are merged (HubSpot
    rejects a batch naming an id twice); company and contact ids never mix."""
    merged: dict[tuple[str, str], dict[str, str | None]] = {}
    for update in updates:
        merged.setdefault(_key(update), {}).update(update.values)
    outcome: dict[tuple[str, str], PushResult] = {}
    for writer in (contacts, companies):
        ids = [record_id for kind, record_id in merged if kind == writer.object_type]
        for start in range(0, len(ids), max_batch):
            chunk = {i: merged[(writer.object_type, i)] for i in ids[start:start + max_batch]}
            outcome.update({(writer.object_type, record_id): result for record_id, result
                            in writer.push_chunk(chunk).items()})
    log.info("push.batch", connector=connector, records=len(merged),
             companies=sum(1 for kind, _ in merged if kind == COMPANY_OBJECT),
             failed=sum(1 for r in outcome.values() if not r.ok))
    return [outcome[_key(update)] for update in updates]


def _key(update: RecordUpdate) -> tuple[str, str]:
    """Which batch API writes this update: companies for a company, else contacts."""
    return ("companies" if update.object_type == COMPANY_OBJECT else "contacts",
            update.record_id)
