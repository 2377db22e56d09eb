"""The HubSpot connector: contacts, owners and events in; contact properties out.

Built on hubspot-api-client with exactly one retry layer: urllib3's own retries are turned
off and every HTTP request goes through `RetryPolicy.call`, which retries only what
`_classify` calls transient (429, 5xx, timeouts, dropped connections). Before each request
the connector spends the budget HubSpot reports in its rate-limit headers, so a sync that
runs alone waits instead of collecting 429s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
import urllib3
from hubspot import HubSpot  # type: ignore[import-untyped]
from hubspot.crm.associations.v4 import (  # type: ignore[import-untyped]
    ApiException as AssociationsApiException,
)
from hubspot.crm.contacts import (  # type: ignore[import-untyped]
    ApiException as ContactsApiException,
)
from hubspot.crm.contacts import (
    PublicObjectSearchRequest,
)
from hubspot.crm.objects import ApiException as ObjectsApiException  # type: ignore[import-untyped]
from hubspot.crm.owners import ApiException as OwnersApiException  # type: ignore[import-untyped]
from hubspot.crm.properties import (  # type: ignore[import-untyped]
    ApiException as PropertiesApiException,
)
from hubspot.events import ApiException as EventsApiException  # type: ignore[import-untyped]

from connectors.hubspot import mapping, paging
from connectors.hubspot.batch_writes import ContactWrites
from connectors.hubspot.creation import ContactCreation
from connectors.hubspot.engagements import EngagementReader, engagement_kinds
from connectors.hubspot.errors import (
    Conflict,
    RequestRejected,
    read_error,
)
from connectors.hubspot.raw import answer
from connectors.hubspot.request_budget import RequestBudget
from connectors.hubspot.search import (
    SEARCH_CAP,
    SearchGate,
    modified_since,
    records_after,
)
from connectors.hubspot.search import newest_stamp as search_newest
from connectors.retry import (
    DEFAULT_POLICY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    TransientError,
    retry_after_seconds,
)
from syncer.domain.accounts import Account
from syncer.domain.api_usage import DEFAULT_RATE_LIMIT_DEADLINE, ApiUsage
from syncer.domain.connector import ConnectorError, ConnectorSettings, mapped_person_fields
from syncer.domain.types import (
    Activity,
    CreateResult,
    NewPerson,
    Owner,
    Person,
    PushResult,
    RecordUpdate,
    Succession,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

API_EXCEPTIONS = (ContactsApiException, OwnersApiException, EventsApiException,
                  PropertiesApiException, ObjectsApiException, AssociationsApiException)
PAGE_SIZE = 100
#: the events API pages up to 1,000 events per request (far fewer calls for activity).
EVENTS_PAGE_SIZE = 1000


class HubSpotConnector:
    """Connector protocol over a HubSpot portal (or the sandbox) with a private-app token.

    `settings.options` may hold `retry_policy` (a RetryPolicy, whose sleep every wait of
    the connector uses), `page_size` (int, at most 100), `respect_rate_limit_headers`
    (bool, default True), `search_cap` (search's result cap, default HubSpot's 10,000; for
    sandboxes with a lower one) and `rate_limit_deadline_seconds` (how long one run may
    wait in all for rate limits before it stops, default 900) and `engagements` (the
    engagement types pulled as sales activity: true for all of calls, meetings, emails,
    notes, tasks, or a list of them; default none, since each type costs a search request
    per sync under the portal's 5-per-second search limit: connectors/hubspot/engagements.py).
    """

    max_batch = 100

    def __init__(self, settings: ConnectorSettings) -> None:
        token = settings.credentials.get("access_token")
        if not token:
            raise ConnectorError(f"connector {settings.name}: credentials.access_token is "
                                 "missing; set it to a HubSpot private app token")
        self.name = settings.name
        self._settings = settings
        self._token = token
        options = settings.options
        self._retry: RetryPolicy = options.get("retry_policy") or DEFAULT_POLICY
        self._page_size = max(1, min(int(options.get("page_size", PAGE_SIZE)), PAGE_SIZE))
        #: search's result cap (10,000 at HubSpot); lower only to test the re-slicing
        self._search_cap = max(1, int(options.get("search_cap", SEARCH_CAP)))
        self._events_page_size = max(1, min(int(options.get("events_page_size",
                                                            EVENTS_PAGE_SIZE)), EVENTS_PAGE_SIZE))
        self._budget = (RequestBudget(sleep=self._retry.sleep)
                        if options.get("respect_rate_limit_headers", True) else None)
        self._api_calls = 0
        #: responses by status, retries, 429s and rate-limit headroom (run history, metrics),
        #: and the run's allowance of rate-limit waiting
        self.usage = ApiUsage(float(options.get("rate_limit_deadline_seconds",
                                                DEFAULT_RATE_LIMIT_DEADLINE)))
        self._timeout = settings.timeout_seconds
        extra = {"ssl_ca_cert": settings.ca_file} if settings.ca_file else {}
        # retry=False: urllib3 neither retries nor follows redirects (one retry layer only).
        client = HubSpot(access_token=token, retry=False, host=settings.base_url, **extra)
        self._contacts = client.crm.contacts.basic_api
        self._search = client.crm.contacts.search_api
        self._search_gate = SearchGate(sleep=self._retry.sleep)
        #: batch create, read and update of contacts (the API object is `_writes.batch`)
        self._writes = ContactWrites(self._call, client.crm.contacts.batch_api,
                                     self._timeout, self._retry, self.usage)
        self._owners = client.crm.owners.owners_api
        self._events = client.events.events_api
        self._properties = client.crm.properties.core_api
        self._engagements = EngagementReader(
            client, settings.base_url, self._call, self._timeout, self.name, self.owners,
            engagement_kinds(self.name, options.get("engagements")), self._search_cap,
            self._search_gate.wait)
        #: syncer person field -> contact property (defaults and config person_fields)
        self._person_fields = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, settings)
        for api in self._apis():
            api.api_client.configuration.host = settings.base_url

    def _apis(self) -> tuple[Any, ...]:
        return (self._contacts, self._search, self._writes.batch, self._owners, self._events,
                self._properties, *self._engagements.apis)

    @property
    def api_calls(self) -> int:
        return self._api_calls

    def close(self) -> None:
        """Close pooled connections (the pipeline may simply drop the connector)."""
        for api in self._apis():
            api.api_client.rest_client.pool_manager.clear()

    # -- calling ---------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], tuple[T, int, Any]]) -> tuple[T, int]:
        """One API request through the retry policy; returns (data, status)."""
        def attempt() -> tuple[T, int]:
            if self._budget is not None:
                self._budget.before_request()
            self._api_calls += 1
            try:
                data, status, headers = fn()
            except API_EXCEPTIONS as error:
                self._note_usage(int(error.status or 0), error.headers)
                if self._budget is not None:
                    self._budget.after_response(error.headers)
                raise self._classify(what, error) from None
            except urllib3.exceptions.HTTPError as error:
                self.usage.record_response(None)
                raise TransientError(f"{what}: {type(error).__name__} talking to HubSpot at "
                                     f"{self._settings.base_url}") from None
            self._note_usage(status, headers)
            if self._budget is not None:
                self._budget.after_response(headers)
            return data, status
        return self._retry.call(attempt, usage=self.usage)

    def _note_usage(self, status: int, headers: Mapping[str, str] | None) -> None:
        self.usage.record_response(status or None)
        remaining = headers.get("X-HubSpot-RateLimit-Remaining") if headers else None
        if headers is not None and remaining is not None and remaining.isdigit():
            limit = headers.get("X-HubSpot-RateLimit-Max", "")
            self.usage.record_headroom(int(remaining), int(limit) if limit.isdigit() else None)

    def _classify(self, what: str, error: Any) -> Exception:
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
                                  f"{self._settings.base_url}: {error.reason}")
        if status == 409:
            return Conflict(detail, body)
        return RequestRejected(detail, body) if status == 400 else ConnectorError(detail)

    # -- reading ---------------------------------------------------------------------------
    def people(self, since: datetime | None = None,
               skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Person]]:
        """Every contact (list API), or with `since` those modified at or after it
        (search API, around its 10,000-result cap), except those stamped in any
        (start, end] of `skip`: the stretches of syncer's own writes (at most four, one
        filter group each)."""
        pages: Iterator[list[Any]]
        fields = self._read_fields()
        if since is not None:
            pages = modified_since(mapping.as_utc(since), fields, self._do_search,
                                   cap=self._search_cap,
                                   skip=[(mapping.as_utc(a), mapping.as_utc(b))
                                         for a, b in skip])
        else:
            pages = (page for page, _ in self._listed(None))
        yield from self._mapped(pages)

    def full_pages(self, position: str | None) -> Iterator[tuple[list[Person], str | None]]:
        """Every contact (list API) from `position`, each page with the `after` cursor
        that follows it (HubSpot's is the next contact's id: it outlives the process)."""
        for page, after in self._listed(position):
            yield [person for people in self._mapped(iter([page])) for person in people], after

    def _listed(self, start: str | None) -> Iterator[tuple[list[Any], str | None]]:
        fields = self._read_fields()
        return self._paged("contacts.list", lambda after: answer(self._contacts
                           .get_page_with_http_info(limit=self._page_size, after=after,
                                                    properties=fields, archived=False,
                                                    _preload_content=False,
                                                    _request_timeout=self._timeout)), start)

    def _read_fields(self) -> list[str]:
        return list(dict.fromkeys([*mapping.MODEL_PROPERTIES, *self._settings.writeback_fields,
                                   *self._person_fields.values()]))

    def _mapped(self, pages: Iterator[list[Any]]) -> Iterator[list[Person]]:
        checked = False
        for page in pages:
            if page and not checked:
                self._refuse_missing(page[0].properties or {})
                checked = True
            people = [mapping.to_person(self.name, str(c.id), c.properties or {},
                                        c.updated_at, self._settings.writeback_fields,
                                        self._person_fields)
                      for c in page]
            if people:
                yield people

    # -- echo and reconciliation sweep (syncer/run/echo.py, syncer/run/sweep.py) -----------
    def newest_stamp(self) -> datetime | None:
        """The newest contact modification time in the portal (one search request)."""
        return search_newest(self._do_search)

    def take_write_window(self) -> tuple[datetime, datetime] | None:
        """The earliest and latest stamps HubSpot gave this connector's writes since the
        last call (from its batch answers: no request), None without a write; forgotten
        here, so a connector kept for many runs tells each run its own."""
        told, self._writes.stamps = self._writes.stamps, None
        return told

    def sweep_page(self, position: str | None) -> tuple[list[Person], str | None]:
        """One page (one search request) of contacts in id order from `position`, and where
        the next page starts (None: the listing is done)."""
        found, last = records_after(int(position or 0), self._read_fields(), self._do_search)
        people = [person for page in self._mapped(iter([found])) for person in page]
        return people, None if last is None else str(last)

    def _refuse_missing(self, returned: Mapping[str, object]) -> None:
        """Stop a pull whose mapped fields name properties the portal lacks (the first
        record returned tells, at no extra request): scoring on a field that is silently
        always empty, or failing every write, would be worse than failing now."""
        problems = mapping.missing_problems(self.name, self._person_fields,
                                            self._settings.writeback_fields, returned)
        if problems:
            raise ConnectorError("; ".join(problems))

    def person_field_problems(self) -> list[str]:
        """The mapped properties the portal lacks (one request: the property list)."""
        body, _ = self._call("properties.list", lambda: self._properties
                             .get_all_with_http_info(object_type="contacts", archived=False,
                                                     _request_timeout=self._timeout))
        known = {str(p.name) for p in body.results or []}
        return [mapping.missing_property_problem(self.name, name, crm)
                for name, crm in self._person_fields.items() if crm not in known]

    def _do_search(self, request: PublicObjectSearchRequest) -> Any:
        self._search_gate.wait()
        body, _ = self._call("contacts.search", lambda: answer(
            self._search.do_search_with_http_info(public_object_search_request=request,
                                                  _preload_content=False,
                                                  _request_timeout=self._timeout)))
        return body

    def successions(self, since: datetime) -> Iterator[list[Succession]]:
        """Contacts that absorbed others by a merge, modified at or after `since`: one
        Succession per id in their `hs_merged_object_ids` (the survivor's modification
        time is `at`, an upper bound of the merge). The ids accumulate over merges, so an
        old merge comes again with a survivor merged again; the store skips what it knows.
        Costs one search request when nothing merged (search API, past its 10,000 cap)."""
        merged = {"propertyName": mapping.MERGED_IDS, "operator": "HAS_PROPERTY"}
        for page in modified_since(mapping.as_utc(since), [mapping.MERGED_IDS,
                                                           "lastmodifieddate"],
                                   self._do_search, cap=self._search_cap,
                                   extra_filters=[merged]):
            found = [succession for contact in page
                     for succession in mapping.to_successions(
                         self.name, str(contact.id), contact.properties or {},
                         contact.updated_at)]
            if found:
                yield found

    def activities(self, since: datetime) -> Iterator[list[Activity]]:
        since = mapping.as_utc(since)
        # The API filters strictly after; ask from 1 ms earlier to include `since` itself.
        start = since - timedelta(milliseconds=1)
        for page in self._pages("events.list", lambda after: answer(self._events
                                .get_page_with_http_info(object_type="contact",
                                                         occurred_after=start,
                                                         sort=["ASCENDING"],
                                                         limit=self._events_page_size,
                                                         after=after,
                                                         _preload_content=False,
                                                         _request_timeout=self._timeout))):
            activities = []
            for event in page:
                activity = mapping.to_activity(self.name, str(event.id), str(event.object_id),
                                               str(event.event_type), event.occurred_at,
                                               event.properties)
                if activity is not None and activity.occurred_at >= since:
                    activities.append(activity)
            if activities:
                yield activities
        yield from self._engagements.activities(since)  # calls, meetings, ... (engagements.py)

    def read_by_ids(self, record_ids: Sequence[str], activities_since: datetime
                    ) -> tuple[list[Person], list[Activity]]:
        """Named contacts now and their events (connectors/hubspot/by_ids.py)."""
        from connectors.hubspot.by_ids import read_by_ids
        return read_by_ids(self, record_ids, activities_since)

    def accounts(self, since: datetime | None = None) -> Iterator[list[Account]]:
        """No companies are read yet (issue 20 item 3 is being built): none."""
        yield from ()

    def owners(self) -> list[Owner]:
        found: list[Owner] = []
        for archived in (False, True):
            def fetch(after: str | None, archived: bool = archived) -> Any:
                return self._owners.get_page_with_http_info(
                    limit=100, after=after, archived=archived, _request_timeout=self._timeout)
            for page in self._pages("owners.list", fetch):
                found.extend(
                    Owner(source=self.name, owner_id=str(o.id), email=o.email,
                          name=" ".join(p for p in (o.first_name, o.last_name) if p),
                          active=not o.archived)
                    for o in page if o.email)
        return found

    def _pages(self, what: str, fetch: Callable[[str | None], Any]) -> Iterator[list[Any]]:
        return (page for page, _ in self._paged(what, fetch, None))

    def _paged(self, what: str, fetch: Callable[[str | None], Any], after: str | None
               ) -> Iterator[tuple[list[Any], str | None]]:
        return paging.walk(self._call, what, fetch, after)

    # -- writing ---------------------------------------------------------------------------
    def create(self, people: Sequence[NewPerson]) -> list[CreateResult]:
        """Create contacts in batches of 100 (see creation.py): a person whose email HubSpot
        already holds is linked to that contact (`existed`), never duplicated; other
        failures are per person. Transient failures are retried like a push."""
        results = ContactCreation(self._writes.create_batch, self._writes.find_by_email,
                                  self.max_batch).run(people)
        log.info("create.batch", connector=self.name, people=len(people),
                 created=sum(1 for r in results if r.ok and not r.existed),
                 linked=sum(1 for r in results if r.existed),
                 failed=sum(1 for r in results if not r.ok))
        return results

    def push(self, updates: Sequence[RecordUpdate]) -> list[PushResult]:
        merged: dict[str, dict[str, str | None]] = {}
        for update in updates:  # one input per record: HubSpot rejects duplicate ids
            merged.setdefault(update.record_id, {}).update(update.values)
        ids = list(merged)
        outcome: dict[str, PushResult] = {}
        for start in range(0, len(ids), self.max_batch):
            chunk = ids[start:start + self.max_batch]
            outcome.update(self._writes.push_chunk({i: merged[i] for i in chunk}))
        log.info("push.batch", connector=self.name, records=len(ids),
                 failed=sum(1 for r in outcome.values() if not r.ok))
        return [outcome[u.record_id] for u in updates]
