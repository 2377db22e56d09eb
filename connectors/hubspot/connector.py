"""The HubSpot connector: contacts, companies, owners and events in; contact and company
properties out.

Built on hubspot-api-client with exactly one retry layer: urllib3's own retries are turned
off and every HTTP request goes through calls.py (`RetryPolicy.call`, which retries only
what is transient: 429, 5xx, timeouts, dropped connections), after spending the budget
HubSpot reports in its rate-limit headers, so a sync that runs alone waits instead of
collecting 429s. Answers are read into typed records (answers.py) where they arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta

import structlog
from hubspot import HubSpot  # type: ignore[import-untyped]
from hubspot.crm.contacts import PublicObjectSearchRequest  # type: ignore[import-untyped]

from connectors.hubspot import mapping
from connectors.hubspot.answers import (
    CrmObject,
    Event,
    Page,
    contact_page,
    crm_object,
    event,
    owner,
    page,
    property_definition,
)
from connectors.hubspot.batch_writes import ContactWrites
from connectors.hubspot.by_ids import read_by_ids
from connectors.hubspot.calls import ApiCalls
from connectors.hubspot.companies import CompanyReader, push_records
from connectors.hubspot.creation import ContactCreation
from connectors.hubspot.engagements import EngagementReader, engagement_kinds
from connectors.hubspot.raw import GeneratedApi, RawResponse, answer, parse_datetime
from connectors.hubspot.request_budget import RequestBudget
from connectors.hubspot.search import (
    SEARCH_CAP,
    SearchGate,
    modified_since,
    records_after,
)
from connectors.hubspot.search import newest_stamp as search_newest
from connectors.retry import DEFAULT_POLICY, RetryPolicy
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

log = structlog.get_logger(__name__)

PAGE_SIZE = 100
#: the events API pages up to 1,000 events per request (far fewer calls for activity).
EVENTS_PAGE_SIZE = 1000
#: the first part of an `activity_pages` position in the events listing
EVENTS_POSITION = "events:"


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
        options = settings.options
        self._retry: RetryPolicy = options.get("retry_policy") or DEFAULT_POLICY
        self._page_size = max(1, min(int(options.get("page_size", PAGE_SIZE)), PAGE_SIZE))
        #: search's result cap (10,000 at HubSpot); lower only to test the re-slicing
        self._search_cap = max(1, int(options.get("search_cap", SEARCH_CAP)))
        self._events_page_size = max(1, min(int(options.get("events_page_size",
                                                            EVENTS_PAGE_SIZE)), EVENTS_PAGE_SIZE))
        #: responses by status, retries, 429s and rate-limit headroom (run history, metrics),
        #: and the run's allowance of rate-limit waiting
        self.usage = ApiUsage(float(options.get("rate_limit_deadline_seconds",
                                                DEFAULT_RATE_LIMIT_DEADLINE)))
        self._calls = ApiCalls(self.name, settings.base_url, token, self._retry, self.usage,
                               RequestBudget(sleep=self._retry.sleep)
                               if options.get("respect_rate_limit_headers", True) else None)
        self._call, self._pages = self._calls.call, self._calls.pages
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
            client.crm.objects.search_api, client.crm.associations.v4.batch_api,
            settings.base_url, self._call, self._timeout, self.name, self.owners,
            engagement_kinds(self.name, options.get("engagements")), self._search_cap,
            self._search_gate.wait)
        #: syncer person field -> contact property (defaults and config person_fields)
        self._person_fields = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, settings)
        self._companies = CompanyReader(
            client, settings, self._calls, retry=self._retry, search_cap=self._search_cap,
            search_wait=self._search_gate.wait, read_owners=self.owners)
        for api in self._apis():
            api.api_client.configuration.host = settings.base_url

    def _apis(self) -> tuple[GeneratedApi, ...]:
        return (self._contacts, self._search, self._writes.batch, self._owners, self._events,
                self._properties, *self._engagements.apis, *self._companies.apis)

    @property
    def api_calls(self) -> int:
        return self._calls.count

    def close(self) -> None:
        """Close pooled connections (the pipeline may simply drop the connector)."""
        for api in self._apis():
            api.api_client.rest_client.pool_manager.clear()

    # -- reading ---------------------------------------------------------------------------
    def people(self, since: datetime | None = None,
               skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Person]]:
        """Every contact (list API), or with `since` those modified at or after it
        (search API, around its 10,000-result cap), except those stamped in any
        (start, end] of `skip`: the stretches of syncer's own writes (at most four, one
        filter group each)."""
        pages: Iterator[list[CrmObject]]
        fields = self.read_fields()
        if since is not None:
            pages = modified_since(mapping.as_utc(since), fields, self._do_search,
                                   cap=self._search_cap,
                                   skip=[(mapping.as_utc(a), mapping.as_utc(b))
                                         for a, b in skip])
        else:
            pages = (found for found, _ in self._listed(None))
        yield from self._mapped(pages)

    def full_pages(self, position: str | None) -> Iterator[tuple[list[Person], str | None]]:
        """Every contact (list API) from `position`, each page with the `after` cursor
        that follows it (HubSpot's is the next contact's id: it outlives the process)."""
        for found, after in self._listed(position):
            yield [person for people in self._mapped(iter([found])) for person in people], after

    def _listed(self, start: str | None) -> Iterator[tuple[list[CrmObject], str | None]]:
        fields = self.read_fields()
        return self._calls.positioned(
            "contacts.list", lambda after: self._contacts.get_page_with_http_info(
                limit=self._page_size, after=after, properties=fields, archived=False,
                _preload_content=False, _request_timeout=self._timeout), crm_object, start)

    def read_fields(self) -> list[str]:
        """The contact properties a read asks for: the model's, the written, the mapped."""
        return list(dict.fromkeys([*mapping.MODEL_PROPERTIES, *self._settings.writeback_fields,
                                   *self._person_fields.values()]))

    def _mapped(self, pages: Iterator[list[CrmObject]]) -> Iterator[list[Person]]:
        checked = False
        for found in pages:
            if found and not checked:
                self._refuse_missing(found[0]["properties"])
                checked = True
            people = [self.person(c) for c in found]
            if people:
                yield people

    # -- records as the domain's (also for by_ids.py) ----------------------------------------
    def person(self, contact: CrmObject) -> Person:
        """One contact as a Person, with this connector's written and mapped fields."""
        return mapping.to_person(self.name, contact["id"], contact["properties"],
                                 _updated(contact), self._settings.writeback_fields,
                                 self._person_fields)

    def activity(self, found: Event) -> Activity | None:
        """One event as an Activity (None: a type syncer does not score)."""
        return mapping.to_activity(self.name, found["id"], found["objectId"],
                                   found["eventType"], parse_datetime(found["occurredAt"]),
                                   found["properties"])

    def events(self, start: datetime, contact_id: str | None = None
               ) -> Iterator[list[Event]]:
        """Pages of events after `start` (strictly: the API's filter), oldest first: of
        every contact, or of one."""
        return self._pages("events.list", self._events_fetch(start, contact_id), event)

    def _events_fetch(self, start: datetime, contact_id: str | None = None
                      ) -> Callable[[str | None], RawResponse]:
        one = {} if contact_id is None else {"object_id": int(contact_id)}

        def fetch(after: str | None) -> RawResponse:
            response: RawResponse = self._events.get_page_with_http_info(
                object_type="contact", occurred_after=start, sort=["ASCENDING"],
                limit=self._events_page_size, after=after, _preload_content=False,
                _request_timeout=self._timeout, **one)
            return response
        return fetch

    def read_contacts(self, ids: Sequence[str], fields: Sequence[str]) -> list[CrmObject]:
        """The contacts with these ids (at most 100) that exist: one batch read."""
        return self._writes.read(ids, fields)

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
        found, last = records_after(int(position or 0), self.read_fields(), self._do_search)
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
        body, _ = self._call("properties.list", lambda: answer(self._properties
                             .get_all_with_http_info(object_type="contacts", archived=False,
                                                     _preload_content=False,
                                                     _request_timeout=self._timeout)))
        known = {p["name"] for p in page(body, "properties.list", property_definition)["results"]}
        return [mapping.missing_property_problem(self.name, name, crm)
                for name, crm in self._person_fields.items() if crm not in known]

    def _do_search(self, request: PublicObjectSearchRequest) -> Page[CrmObject]:
        self._search_gate.wait()
        body, _ = self._call("contacts.search", lambda: answer(
            self._search.do_search_with_http_info(public_object_search_request=request,
                                                  _preload_content=False,
                                                  _request_timeout=self._timeout)))
        return contact_page(body, "contacts.search")

    def successions(self, since: datetime) -> Iterator[list[Succession]]:
        """Contacts that absorbed others by a merge, modified at or after `since`: one
        Succession per id in their `hs_merged_object_ids` (the survivor's modification
        time is `at`, an upper bound of the merge). The ids accumulate over merges, so an
        old merge comes again with a survivor merged again; the store skips what it knows.
        Costs one search request when nothing merged (search API, past its 10,000 cap)."""
        merged = {"propertyName": mapping.MERGED_IDS, "operator": "HAS_PROPERTY"}
        for contacts in modified_since(mapping.as_utc(since), [mapping.MERGED_IDS,
                                                               "lastmodifieddate"],
                                       self._do_search, cap=self._search_cap,
                                       extra_filters=[merged]):
            found = [succession for contact in contacts
                     for succession in mapping.to_successions(
                         self.name, contact["id"], contact["properties"], _updated(contact))]
            if found:
                yield found

    def activities(self, since: datetime) -> Iterator[list[Activity]]:
        since = mapping.as_utc(since)
        # The API filters strictly after; ask from 1 ms earlier to include `since` itself.
        for events in self.events(since - timedelta(milliseconds=1)):
            activities = self._event_activities(events, since)
            if activities:
                yield activities
        yield from self._engagements.activities(since)  # calls, meetings, ... (engagements.py)

    def activity_pages(self, since: datetime, position: str | None
                       ) -> Iterator[tuple[list[Activity], str | None]]:
        """As `activities(since)`, from `position`, each page with the position after it: a
        killed full sync's activities go on there. "events:<after>" is the events API's
        own paging cursor (for the same `since`, valid in another process as the contacts
        list's is), then the engagements' positions (engagements.py); None: the start."""
        since = mapping.as_utc(since)
        if position is None or position.startswith(EVENTS_POSITION):
            after = (position.partition(":")[2] or None) if position else None
            for events, following in self._calls.positioned(
                    "events.list", self._events_fetch(since - timedelta(milliseconds=1)),
                    event, after):
                yield self._event_activities(events, since), \
                    f"{EVENTS_POSITION}{following}" if following \
                    else self._engagements.start_position(since)
            position = None  # the engagements from their start
        yield from self._engagements.activity_pages(since, position)

    def _event_activities(self, events: list[Event], since: datetime) -> list[Activity]:
        """The events syncer scores, at or after `since`, as Activities."""
        return [a for a in (self.activity(e) for e in events)
                if a is not None and a.occurred_at >= since]

    def read_by_ids(self, record_ids: Sequence[str], activities_since: datetime
                    ) -> tuple[list[Person], list[Activity]]:
        """Named contacts now and their events (connectors/hubspot/by_ids.py)."""
        return read_by_ids(self, record_ids, activities_since)

    def accounts(self, since: datetime | None = None,
                 skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Account]]:
        """Every company, or with `since` those modified at or after it outside the
        (start, end] ranges of `skip`, syncer's own writes (companies.py)."""
        yield from self._companies.accounts(since, skip)

    def newest_account_stamp(self) -> datetime | None:
        """The newest company modification time in the portal (one search request)."""
        return self._companies.newest_stamp()

    def account_sweep_page(self, position: str | None) -> tuple[list[Account], str | None]:
        """One page (one search request) of companies in id order from `position`, and
        where the next page starts (None: the listing is done): the accounts'
        reconciliation sweep (syncer/run/account_sweep.py, companies.py)."""
        return self._companies.sweep_page(position)

    def take_account_write_window(self) -> tuple[datetime, datetime] | None:
        """The stamps HubSpot gave this connector's company writes since the last call
        (from the batch answers: no request), None without one; then forgotten."""
        return self._companies.take_write_window()

    def owners(self) -> list[Owner]:
        found: list[Owner] = []
        for archived in (False, True):
            def fetch(after: str | None, archived: bool = archived) -> RawResponse:
                response: RawResponse = self._owners.get_page_with_http_info(
                    limit=100, after=after, archived=archived, _preload_content=False,
                    _request_timeout=self._timeout)
                return response
            for owners in self._pages("owners.list", fetch, owner):
                found.extend(
                    Owner(source=self.name, owner_id=o["id"], email=o["email"],
                          name=" ".join(p for p in (o["firstName"], o["lastName"]) if p),
                          active=not o["archived"])
                    for o in owners if o["email"])
        self._companies.known_owners(found)  # a company's owner email, at no request
        return found

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
        """Contacts by the contacts batch API, companies (object_type "companies") by the
        companies one, 100 a batch; results in order (companies.py)."""
        return push_records(updates, self._writes, self._companies.writes, self.max_batch,
                            self.name)


def _updated(contact: CrmObject) -> datetime | None:
    """When HubSpot last changed the contact (its `updatedAt`), if the answer says."""
    stamp = contact.get("updatedAt")
    return parse_datetime(stamp) if stamp else None
