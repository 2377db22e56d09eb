"""The HubSpot endpoints the sandbox answers, as plain request -> JSON handlers.

Each handler reads a werkzeug Request and returns (status, body) in the shapes of
hubspot-api-client 12's models (generated from HubSpot's OpenAPI documents), or raises
ApiFailure for a HubSpot error body. Authentication, rate limits and the server itself are
the sandbox's concern (sandbox.py), so these stay easy to read against the API reference.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from connectors.sandbox.faults import HubSpotLimits
from connectors.sandbox.hubspot.crm_objects import CrmObjects
from connectors.sandbox.hubspot.engagements import Engagements
from connectors.sandbox.hubspot.engagements import handler as engagement_handler
from connectors.sandbox.hubspot.events import EventLog, EventQuery, EventRecord
from connectors.sandbox.hubspot.http import (
    Answer,
    ApiFailure,
    Json,
    iso_millis,
    json_body,
    not_found,
    parse_instant,
    validation_error,
)
from connectors.sandbox.hubspot.identity import MergeMode
from connectors.sandbox.hubspot.properties import PropertyAdmin
from connectors.sandbox.hubspot.schema import EVENT_TYPES, PropertyDef
from connectors.sandbox.hubspot.search import parse_search, run_search
from connectors.sandbox.hubspot.state import CONTACT_ID_BASE, Contact, OwnerRecord, PortalState
from connectors.sandbox.hubspot.writes import ContactWrites

CONTACT_OBJECT_TYPES = frozenset({"contacts", "contact", "0-1", "CONTACT"})
Handler = Callable[[Request, dict[str, str]], Answer]


def _flag(args: MultiDict[str, str], name: str) -> bool:
    return args.get(name, "false").lower() == "true"


def _int_arg(args: MultiDict[str, str], name: str, default: int, maximum: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise validation_error(f"{name} must be an integer, got '{raw}'") from error
    if value < 1:
        raise validation_error(f"{name} must be at least 1")
    return min(value, maximum)  # HubSpot quietly caps an oversized page


def _names(args: MultiDict[str, str], name: str = "properties") -> list[str] | None:
    """`properties` arrives repeated (the Python client) or comma-separated (curl)."""
    values = [part.strip() for raw in args.getlist(name) for part in raw.split(",")]
    values = [v for v in values if v]
    return values or None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        kind, _, value = base64.urlsafe_b64decode(padded).decode().partition(":")
        if kind == "offset":
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise validation_error(f"Invalid paging cursor: '{token}'")


class HubSpotApi(ContactWrites, PropertyAdmin):
    """Request handlers over one PortalState; `base_url` is used in paging links.

    `recent_writes` remembers the contacts the API wrote last (the simulated editor picks
    from them, so its edits collide with a sync's writes as a real colleague's would).
    `merge_mode` says whether a merge keeps the primary's id (see sandbox_identity).
    """

    def __init__(self, state: PortalState, base_url: Callable[[], str],
                 limits: HubSpotLimits | None = None,
                 merge_mode: MergeMode = "keep_primary") -> None:
        self.state = state
        self.holder = state  # the contact properties PropertyAdmin serves
        self._base_url = base_url
        self.limits = limits or HubSpotLimits()
        self.merge_mode = merge_mode
        self.events = EventLog(state)
        #: calls, meetings, emails, notes, tasks (connectors/sandbox/hubspot/engagements.py)
        self.engagements = Engagements(lambda: state._clock())
        self.recent_writes: deque[str] = deque(maxlen=256)
        #: companies, deals and associations (connectors/sandbox/hubspot/crm_objects.py)
        self.objects = CrmObjects(state, self.limits, base_url, self.property_json)

    # -- shapes ------------------------------------------------------------------------
    @staticmethod
    def owner_json(owner: OwnerRecord) -> Json:
        return {"id": owner.id, "email": owner.email, "firstName": owner.first_name,
                "lastName": owner.last_name, "userId": owner.user_id,
                "userIdIncludingInactive": owner.user_id, "type": "PERSON",
                "archived": owner.archived, "teams": [],
                "createdAt": iso_millis(owner.created_at),
                "updatedAt": iso_millis(owner.updated_at)}

    @staticmethod
    def event_json(event: EventRecord) -> Json:
        return {"occurredAt": iso_millis(event.occurred_at), "eventType": event.event_type,
                "id": event.id, "objectId": event.object_id, "objectType": "CONTACT",
                "properties": dict(event.properties)}

    def property_json(self, prop: PropertyDef, order: int) -> Json:
        options = prop.options
        if prop.owner_options:
            options = tuple((o.id, f"{o.first_name} {o.last_name} ({o.email})")
                            for o in self.state.owners if not o.archived)
        data: Json = {
            "name": prop.name, "label": prop.label, "type": prop.type,
            "fieldType": prop.field_type, "groupName": prop.group_name,
            "description": prop.description, "displayOrder": order, "hidden": False,
            "formField": not prop.read_only, "calculated": False,
            "externalOptions": prop.owner_options, "hasUniqueValue": prop.name == "email",
            "archived": False,
            "options": [{"label": label, "value": value, "displayOrder": i, "hidden": False}
                        for i, (value, label) in enumerate(options)],
            "modificationMetadata": {"archivable": not prop.hubspot_defined,
                                     "readOnlyDefinition": prop.hubspot_defined,
                                     "readOnlyValue": prop.read_only},
        }
        if prop.hubspot_defined:
            data["hubspotDefined"] = True
        return data

    # -- contacts ----------------------------------------------------------------------
    def list_contacts(self, request: Request, args: dict[str, str]) -> Answer:
        """Pages in id order; `after` is the id of the page's first contact, so a page
        costs generating its own contacts, however large the portal."""
        query = request.args
        history = _names(query, "propertiesWithHistory")
        # HubSpot pages at most 50 records when it returns their history
        limit = _int_arg(query, "limit", 10,
                         min(self.limits.list_page_max, 50) if history
                         else self.limits.list_page_max)
        after = query.get("after")
        start = 0
        if after:
            if not after.isdigit():
                raise validation_error(f"Invalid paging cursor: '{after}'")
            start = int(after) - CONTACT_ID_BASE
        names = _names(query)
        archived = _flag(query, "archived")  # archived contacts only, as HubSpot
        listed: Iterable[Contact] = (
            (c for c in self.state.archived_contacts() if int(c.id) >= int(after or 0))
            if archived else self.state.iter_contacts(start))
        page: list[Contact] = []
        for contact in listed:
            page.append(contact)
            if len(page) > limit:
                break
        body: Json = {"results": [self.contact_json(c, names, history)
                                  for c in page[:limit]]}
        if len(page) > limit:
            nxt = page[limit].id
            link = f"{self._base_url()}/crm/v3/objects/contacts?after={nxt}"
            body["paging"] = {"next": {"after": nxt, "link": link + (
                "&archived=true" if archived else "")}}
        return 200, body

    def get_contact(self, request: Request, args: dict[str, str]) -> Answer:
        id_property = request.args.get("idProperty")
        wanted = args["record_id"]
        history = _names(request.args, "propertiesWithHistory")
        if _flag(request.args, "archived"):
            with self.state.lock:
                gone = self.state.archived.get(wanted)
            if gone is None:
                raise not_found()
            return 200, self.contact_json(gone, _names(request.args), history)
        if id_property and id_property != "hs_object_id":
            contact = self.state.find(id_property, wanted)
        else:  # an id merged away answers as the contact it went into, as in HubSpot
            current = self.state.current_id(wanted)
            contact = self.state.contact(current) if current is not None else None
        if contact is None:
            raise not_found()
        return 200, self.contact_json(contact, _names(request.args), history)

    def search(self, request: Request, args: dict[str, str]) -> Answer:
        search = parse_search(json_body(request), self.limits.search_page_max)
        cap = self.limits.search_cap
        if search.offset >= cap:
            raise validation_error(
                f"Search results are limited to {cap}: 'after' {search.offset} "
                "is past the last result that can be returned. Narrow the search instead.")
        keep = min(search.offset + search.limit, cap)
        total, found = run_search(self.state.iter_contacts(), search, keep)
        end = min(search.offset + search.limit, total, cap)
        results = [self.contact_json(c, search.properties) for c in found[search.offset:end]]
        body: Json = {"total": total, "results": results}
        if end < total:
            body["paging"] = {"next": {"after": str(end)}}
        return 200, body

    # -- properties, schemas, associations ---------------------------------------------
    def list_properties(self, request: Request, args: dict[str, str]) -> Answer:
        if _flag(request.args, "archived"):
            return 200, {"results": []}
        with self.state.lock:
            properties = list(self.state.properties.values())
        return 200, {"results": [self.property_json(p, i) for i, p in enumerate(properties)]}

    def legacy_properties(self, request: Request, args: dict[str, str]) -> Answer:
        """`/properties/v2/contact/properties`: a plain JSON list, older field names."""
        listed = []
        with self.state.lock:
            properties = list(self.state.properties.values())
        for i, prop in enumerate(properties):
            data = self.property_json(prop, i)
            listed.append({
                "name": data["name"], "label": data["label"], "type": data["type"],
                "fieldType": data["fieldType"], "groupName": data["groupName"],
                "description": data["description"], "options": data["options"],
                "readOnlyValue": prop.read_only, "readOnlyDefinition": prop.hubspot_defined,
                "hidden": False, "deleted": False, "formField": data["formField"],
                "displayOrder": i, "calculated": False, "externalOptions": prop.owner_options,
                "hubspotDefined": prop.hubspot_defined})
        return 200, listed

    def schemas(self, request: Request, args: dict[str, str]) -> Answer:
        return 200, {"results": []}  # no custom objects in the sandbox portal

    def association_batch_read(self, request: Request,
                               args: dict[str, str]) -> Answer:
        json_body(request)
        now = iso_millis(datetime.now(timezone.utc))
        # Sandbox contacts have no associated companies or contacts.
        return 200, {"status": "COMPLETE", "results": [], "startedAt": now,
                     "completedAt": now}

    # -- owners --------------------------------------------------------------------------
    def list_owners(self, request: Request, args: dict[str, str]) -> Answer:
        query = request.args
        limit = _int_arg(query, "limit", 100, 500)
        start = _offset(query.get("after"))
        archived = _flag(query, "archived")
        email = (query.get("email") or "").lower()
        chosen = [o for o in self.state.owners if o.archived == archived
                  and (not email or o.email.lower() == email)]
        body: Json = {"results": [self.owner_json(o) for o in chosen[start:start + limit]]}
        if start + limit < len(chosen):
            token = _token(start + limit)
            link = f"{self._base_url()}/crm/v3/owners/?after={token}"
            body["paging"] = {"next": {"after": token, "link": link}}
        return 200, body

    def get_owner(self, request: Request, args: dict[str, str]) -> Answer:
        by_user = request.args.get("idProperty") == "userId"
        archived = _flag(request.args, "archived")
        for owner in self.state.owners:
            key = str(owner.user_id) if by_user else owner.id
            if key == args["owner_id"] and owner.archived == archived:
                return 200, self.owner_json(owner)
        raise not_found()

    # -- events --------------------------------------------------------------------------
    def list_events(self, request: Request, args: dict[str, str]) -> Answer:
        query = request.args
        limit = _int_arg(query, "limit", 100, 1000)
        events, token = self.events.page(self._event_query(query), query.get("after"), limit)
        body: Json = {"results": [self.event_json(e) for e in events]}
        if token is not None:
            link = f"{self._base_url()}/events/v3/events/?after={token}"
            body["paging"] = {"next": {"after": token, "link": link}}
        return 200, body

    def _event_query(self, query: MultiDict[str, str]) -> EventQuery:
        object_type = query.get("objectType")
        object_id = query.get("objectId")
        if object_id and not object_type:
            raise validation_error("objectId requires objectType")
        sort = ",".join(query.getlist("sort")).upper()
        if sort not in ("", "DESCENDING", "-OCCURREDAT", "ASCENDING", "OCCURREDAT"):
            raise validation_error(f"Invalid sort '{sort}': use ASCENDING or DESCENDING")
        nothing = EventQuery(matches_nothing=True)
        if object_type and object_type not in CONTACT_OBJECT_TYPES:
            return nothing  # the sandbox portal records events on contacts only
        object_indices = None
        if object_id:
            if self.state.contact(object_id) is None:
                return nothing  # unknown, or merged away: its events are the survivor's
            held = [object_id, *self.state.absorbed_ids(object_id)]
            object_indices = tuple(i for i in map(self.state.index_of, held) if i is not None)
        return EventQuery(
            object_indices=object_indices, event_type=query.get("eventType") or None,
            after=parse_instant(query["occurredAfter"]) if query.get("occurredAfter") else None,
            before=(parse_instant(query["occurredBefore"]) if query.get("occurredBefore")
                    else None),
            ids=frozenset(query.getlist("id")),
            properties={k.split(".", 1)[1]: v for k, v in query.items()
                        if k.startswith("property.")},
            object_properties={k.split(".", 1)[1]: v.lower() for k, v in query.items()
                               if k.startswith("objectProperty.")},
            descending=sort in ("", "DESCENDING", "-OCCURREDAT"))

    def event_types(self, request: Request, args: dict[str, str]) -> Answer:
        return 200, {"eventTypes": list(EVENT_TYPES)}


#: (path, methods, handler name). Rules ending in / also match without it.
ROUTES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("/crm/v3/objects/<object_type>", ("GET",), "list_contacts"),
    ("/crm/v3/objects/<object_type>/<record_id>", ("GET",), "get_contact"),
    ("/crm/v3/objects/<object_type>", ("POST",), "create_contact"),
    ("/crm/v3/objects/<object_type>/batch/create", ("POST",), "batch_create"),
    ("/crm/v3/objects/<object_type>/batch/update", ("POST",), "batch_update"),
    ("/crm/v3/objects/<object_type>/batch/read", ("POST",), "batch_read"),
    ("/crm/v3/objects/<object_type>/batch/archive", ("POST",), "batch_archive"),
    ("/crm/v3/objects/<object_type>/<record_id>", ("DELETE",), "archive_contact"),
    ("/crm/v3/objects/<object_type>/<record_id>", ("PATCH",), "update_record"),
    ("/crm/v3/objects/<object_type>/batch/upsert", ("POST",), "batch_upsert"),
    ("/crm/v3/objects/<object_type>/merge", ("POST",), "merge"),
    ("/crm/v3/objects/<object_type>/search", ("POST",), "search"),
    ("/crm/v3/properties/<object_type>", ("GET",), "list_properties"),
    ("/crm/v3/properties/<object_type>", ("POST",), "create_property"),
    ("/crm/v3/properties/<object_type>/groups", ("GET",), "list_groups"),
    ("/crm/v3/properties/<object_type>/groups", ("POST",), "create_group"),
    ("/crm/v3/properties/<object_type>/<property_name>", ("GET",), "get_property"),
    ("/crm/v3/properties/<object_type>/<property_name>", ("DELETE",), "delete_property"),
    ("/properties/v2/<object_type>/properties", ("GET",), "legacy_properties"),
    ("/crm/v3/schemas", ("GET",), "schemas"),
    ("/crm-object-schemas/v3/schemas", ("GET",), "schemas"),  # hubspot-api-client's path
    ("/crm/v4/associations/<object_type>/<to_type>/batch/read", ("POST",),
     "association_batch_read"),
    ("/crm/v4/objects/<object_type>/<record_id>/associations/default/<to_type>/<to_id>",
     ("PUT",), "association_put"),
    ("/crm/v4/objects/<object_type>/<record_id>/associations/<to_type>", ("GET",),
     "association_page"),
    ("/crm/v3/owners/", ("GET",), "list_owners"),
    ("/crm/owners/v3/owners/", ("GET",), "list_owners"),
    ("/crm/v3/owners/<owner_id>", ("GET",), "get_owner"),
    ("/events/v3/events/", ("GET",), "list_events"),
    ("/events/v3/events/event-types", ("GET",), "event_types"),
)
SEARCH_ENDPOINTS = frozenset({"search"})
CONTACT_ENDPOINTS = frozenset({"list_contacts", "get_contact", "batch_update", "search",
                               "create_contact", "batch_create", "batch_read", "merge",
                               "batch_archive", "archive_contact",
                               "list_properties", "legacy_properties", "create_property",
                               "list_groups", "create_group", "get_property",
                               "association_batch_read", "update_record", "batch_upsert",
                               "delete_property", "association_put", "association_page"})


def handler_for(api: HubSpotApi, endpoint: str, args: dict[str, str]) -> Handler:
    """The bound handler for a matched route; unknown object types are a 404."""
    engagement = engagement_handler(api.engagements, endpoint, args)
    if engagement is not None:
        return engagement
    objects = api.objects.handler(endpoint, args)  # companies, deals, associations
    if objects is not None:
        return objects
    if endpoint in CONTACT_ENDPOINTS and args.get("object_type") not in CONTACT_OBJECT_TYPES:
        raise ApiFailure(404, "OBJECT_NOT_FOUND",
                         f"Unable to infer object type from: {args.get('object_type')}")
    handler: Handler = getattr(api, endpoint)
    return handler
