"""HubSpot engagements: the calls, meetings, emails, notes and tasks reps log on contacts.

Read through the CRM v3 objects search of each type (`POST /crm/v3/objects/{type}/search`,
pages of 200, filtered on `hs_lastmodifieddate >= since` and sorted on it, so an edited
engagement comes again and a new one is never missed), then one associations v4 batch read
per page (`POST /crm/v4/associations/{type}/contacts/batch/read`) for the contacts each is
on. Calls per pull: per type, one search per page of engagements plus one association read
per non-empty page, and the owners directory (two calls) once when any engagement has an
owner: they grow with the number of changed engagements, never with the number of people.
Past search's 10,000-result cap the walk starts again from the last stamp seen.

Off unless the connector's `options.engagements` asks for them (true, or a list of types):
each type costs one search request per sync even when nothing changed, and searches share
the portal's 5-per-second limit with the contacts search (paced by the same gate).

Mapping: calls -> `call`, meetings -> `meeting`, emails -> `sales_email` (a logged or sent
one-to-one email; `direction` says which way), notes -> `note`, tasks -> `task`. The actor
is `hubspot_owner_id` and its email from the owners directory; `occurred_at` is
`hs_timestamp` (when it happened, as HubSpot shows it) or else `hs_createdate`. An
engagement on two contacts is an activity of each (source id `<type>:<id>:<contact>`).
Form submissions are not engagements: they come through the events API (mapping.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from connectors.hubspot.answers import CrmObject, association, crm_object, next_after, page
from connectors.hubspot.mapping import as_utc
from connectors.hubspot.raw import Answer, GeneratedApi, RawResponse, answer, parse_datetime
from syncer.domain.connector import ConnectorError
from syncer.domain.json_values import JSONObject
from syncer.domain.types import ACTOR, ACTOR_ID, Activity, ActivityType, Owner

#: object type -> (activity type, the properties read besides the common ones)
KINDS: Mapping[str, tuple[ActivityType, tuple[str, ...]]] = {
    "calls": (ActivityType.CALL, ("hs_call_title", "hs_call_direction", "hs_call_status",
                                  "hs_call_duration")),
    "meetings": (ActivityType.MEETING, ("hs_meeting_title", "hs_meeting_outcome")),
    "emails": (ActivityType.SALES_EMAIL, ("hs_email_subject", "hs_email_direction")),
    "notes": (ActivityType.NOTE, ()),
    "tasks": (ActivityType.TASK, ("hs_task_subject", "hs_task_status", "hs_task_type"))}
COMMON = ("hs_timestamp", "hs_createdate", "hs_lastmodifieddate", "hubspot_owner_id")
STAMP = "hs_lastmodifieddate"
PAGE = 200
SEARCH_CAP = 10_000
#: the first part of every position `activity_pages` gives
POSITION = "engagements"

#: one API request through the connector's retry and rate-limit layer: (body, status)
Call = Callable[[str, Callable[[], Answer]], tuple[JSONObject, int]]


class ObjectSearchApi(GeneratedApi, Protocol):
    """The client's CRM objects search API, as syncer calls it (raw answers)."""

    def do_search_with_http_info(self, *, object_type: str,
                                 public_object_search_request: JSONObject,
                                 **options: object) -> RawResponse: ...


class AssociationsApi(GeneratedApi, Protocol):
    """The client's associations v4 batch API, as syncer calls it (raw answers)."""

    def get_page_with_http_info(self, *, from_object_type: str, to_object_type: str,
                                batch_input_public_fetch_associations_batch_request: JSONObject,
                                **options: object) -> RawResponse: ...


def engagement_kinds(source: str, option: object) -> tuple[str, ...]:
    """The engagement types `options.engagements` asks for: true (all), false or absent
    (none), or a list of type names; anything else names the fix."""
    if option is None or option is False:
        return ()
    if option is True:
        return tuple(KINDS)
    kinds = [option] if isinstance(option, str) else option
    if not isinstance(kinds, list | tuple) or any(k not in KINDS for k in kinds):
        raise ConnectorError(f"connector {source}: options.engagements: {option!r} is not "
                             f"true, false or a list of {', '.join(KINDS)}")
    return tuple(str(k) for k in kinds)


class EngagementReader:
    """Pulls engagements of the configured types through one HubSpot client's objects
    search API (`client.crm.objects.search_api`) and associations v4 batch API
    (`client.crm.associations.v4.batch_api`)."""

    def __init__(self, search: ObjectSearchApi, associations: AssociationsApi, base_url: str,
                 call: Call, timeout: float, source: str, owners: Callable[[], list[Owner]],
                 kinds: Sequence[str] = tuple(KINDS), search_cap: int = SEARCH_CAP,
                 pace: Callable[[], None] = lambda: None) -> None:
        self._search, self._associations = search, associations
        for api in self.apis:
            api.api_client.configuration.host = base_url
        self._call, self._timeout, self._source = call, timeout, source
        self._owners, self._kinds, self._cap = owners, tuple(kinds), search_cap
        #: spaces searches under the portal's per-second search limit (shared with contacts)
        self._pace = pace

    @property
    def apis(self) -> tuple[GeneratedApi, ...]:
        return (self._search, self._associations)

    def activities(self, since: datetime) -> Iterator[list[Activity]]:
        for found, _ in self.activity_pages(since, None):
            if found:
                yield found

    def start_position(self, since: datetime) -> str | None:
        """Where `activity_pages` starts (None: no engagement type is pulled)."""
        return f"{POSITION}:0:0:{as_utc(since).isoformat()}" if self._kinds else None

    def activity_pages(self, since: datetime, position: str | None
                       ) -> Iterator[tuple[list[Activity], str | None]]:
        """The engagements' activities from `position` (None: the start), each page (maybe
        empty) with the position after it, None after the last: "engagements:<type
        index>:<after>:<low>" is the next search's own state (the `after` offset and the
        stamp floor it restarts from past the cap), so a later process goes on there."""
        start, after, low = self._parse(position or self.start_position(since) or "", since)
        emails: dict[str, str] | None = None
        for index in range(start, len(self._kinds)):
            kind = self._kinds[index]
            if index > start:
                after, low = 0, since
            for records, following in self._walk(kind, low, after):
                found: list[Activity] = []
                if records:
                    contacts = self._contacts_of(kind, [r["id"] for r in records])
                    if emails is None and any(r["properties"].get("hubspot_owner_id")
                                              for r in records):
                        emails = {o.owner_id: o.email for o in self._owners()}
                    found = [a for r in records for a in to_activities(
                        self._source, kind, r, contacts.get(r["id"], ()), emails or {})]
                if following is not None:
                    yield found, f"{POSITION}:{index}:{following[1]}:{following[0].isoformat()}"
                else:
                    yield found, (f"{POSITION}:{index + 1}:0:{as_utc(since).isoformat()}"
                                  if index + 1 < len(self._kinds) else None)

    def _parse(self, position: str, since: datetime) -> tuple[int, int, datetime]:
        """(type index, after, low) of a position; one this reader never gives is refused."""
        if not self._kinds:
            return 0, 0, since
        parts = position.split(":", 3)
        try:
            index, after, low = int(parts[1]), int(parts[2]), datetime.fromisoformat(parts[3])
        except (IndexError, ValueError):
            index, after, low = -1, 0, since
        if parts[0] != POSITION or not 0 <= index < len(self._kinds):
            raise ConnectorError(f"{self._source}: engagements position {position!r} is not "
                                 "one this connector gives")
        return index, after, low

    def _walk(self, kind: str, low: datetime, after: int
              ) -> Iterator[tuple[list[CrmObject], tuple[datetime, int] | None]]:
        """Pages of engagements modified at or after `low`, oldest first, from the search
        offset `after`, each with the (low, after) of the next request (None: the last)."""
        while True:
            body: JSONObject = {"filterGroups": [{"filters": [{
                        "propertyName": STAMP, "operator": "GTE",
                        "value": str(int(low.timestamp() * 1000))}]}],
                    "sorts": [{"propertyName": STAMP, "direction": "ASCENDING"}],
                    "properties": [*COMMON, *KINDS[kind][1]], "limit": PAGE}
            if after:
                body["after"] = str(after)
            answered, _ = self._call(f"{kind}.search", self._searcher(kind, body))
            results = page(answered, f"{kind}.search", crm_object)["results"]
            following = next_after(answered)
            if not following:
                yield results, None
                return
            after = int(following)
            if after + PAGE > self._cap:  # search stops at its cap: start again from here
                newest = parse_datetime(str(results[-1]["properties"][STAMP]))
                if newest <= low:
                    raise ConnectorError(f"{kind}: more than {self._cap} engagements share the "
                                     f"stamp {newest.isoformat()}; cannot page past them")
                low, after = newest, 0
            yield results, (low, after)

    def _searcher(self, kind: str, body: JSONObject) -> Callable[[], Answer]:
        def search() -> Answer:
            self._pace()
            return answer(self._search.do_search_with_http_info(
                object_type=kind, public_object_search_request=body,
                _preload_content=False, _request_timeout=self._timeout))
        return search

    def _contacts_of(self, kind: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Engagement id -> the contact ids it is associated with (one request)."""
        request: JSONObject = {"inputs": [{"id": i} for i in ids]}
        answered, _ = self._call(f"{kind}.associations", lambda: answer(
            self._associations.get_page_with_http_info(
                from_object_type=kind, to_object_type="contacts",
                batch_input_public_fetch_associations_batch_request=request,
                _preload_content=False, _request_timeout=self._timeout)))
        return {r["from"]: r["to"]
                for r in page(answered, f"{kind}.associations", association)["results"]}


def to_activities(source: str, kind: str, record: CrmObject,
                  contacts: Sequence[str], emails: Mapping[str, str]) -> list[Activity]:
    """One engagement as an Activity of each contact it is on (none: no activity)."""
    activity_type, extra = KINDS[kind]
    props = record["properties"]
    stamp = props.get("hs_timestamp") or props.get("hs_createdate")
    if not stamp or not contacts:
        return []
    attributes = {name.removeprefix("hs_").removeprefix(kind[:-1] + "_"): str(props[name])
                  for name in extra if props.get(name) not in (None, "")}
    owner = str(props.get("hubspot_owner_id") or "")
    if owner:
        attributes[ACTOR_ID] = owner
        if emails.get(owner):
            attributes[ACTOR] = emails[owner].lower()
    occurred = as_utc(parse_datetime(str(stamp)))
    return [Activity(source=source, source_id=f"{kind}:{record['id']}:{contact}",
                     record_id=contact, type=activity_type, occurred_at=occurred,
                     attributes=attributes) for contact in contacts]
