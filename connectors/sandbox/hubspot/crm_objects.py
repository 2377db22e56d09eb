"""The sandbox portal's companies and deals, their properties and their associations, and
which handler answers a request on them.

Contacts stay in PortalState (lazy, a million of them); companies and deals live in
`RecordStore`s beside it. The routes are the contacts' (api.py ROUTES, `<object_type>` in
the path): `handler` claims a matched route whose object type is a company or a deal, and
the v4 association routes between contacts, companies and deals.
"""

from __future__ import annotations

from collections.abc import Callable

from werkzeug.wrappers import Request

from connectors.sandbox.faults import HubSpotLimits
from connectors.sandbox.hubspot.associations import PRIMARY_COMPANY, Associations, canonical
from connectors.sandbox.hubspot.company_seed import seed_companies
from connectors.sandbox.hubspot.http import Answer, ApiFailure
from connectors.sandbox.hubspot.objects import COMPANIES, DEALS, RecordStore, kind_named
from connectors.sandbox.hubspot.objects_api import ObjectsApi
from connectors.sandbox.hubspot.properties import PropertyAdmin
from connectors.sandbox.hubspot.schema import PropertyDef
from connectors.sandbox.hubspot.state import PortalState

Handler = Callable[[Request, dict[str, str]], Answer]
#: (property, display order) -> its JSON (HubSpotApi.property_json: owner options)
PropertyJson = Callable[[PropertyDef, int], dict[str, object]]
ASSOCIATION_ENDPOINTS = frozenset({"association_batch_read", "association_put",
                                   "association_page"})
PROPERTY_ENDPOINTS = frozenset({"list_properties", "create_property", "get_property",
                                "delete_property", "list_groups", "create_group"})


class StoreProperties(PropertyAdmin):
    """The properties API over one company or deal store."""

    def __init__(self, store: RecordStore, property_json: PropertyJson) -> None:
        self.holder = store
        self._json = property_json

    def property_json(self, prop: PropertyDef, order: int) -> dict[str, object]:
        return self._json(prop, order)

    def list_properties(self, request: Request, args: dict[str, str]) -> Answer:
        if request.args.get("archived", "false").lower() == "true":
            return 200, {"results": []}
        with self.holder.lock:
            properties = list(self.holder.properties.values())
        return 200, {"results": [self.property_json(p, i) for i, p in enumerate(properties)]}


class CrmObjects:
    """Companies and deals of one portal, and the associations of all three types."""

    def __init__(self, state: PortalState, limits: HubSpotLimits,
                 base_url: Callable[[], str], property_json: PropertyJson) -> None:
        self._state = state
        owners = lambda: state.owner_ids(include_archived=False)  # noqa: E731
        self.companies = RecordStore(COMPANIES, state._clock, owners)
        self.deals = RecordStore(DEALS, state._clock, owners)
        self.stores = {store.kind.name: store for store in (self.companies, self.deals)}
        self.associations = Associations(self.exists, self._set_primary)
        state.listeners.append(self.associations.contact_changed)
        if state.world.hubspot_companies:
            seed_companies(state, self.companies, self.associations)
        self.apis = {name: ObjectsApi(store, self.associations, limits, base_url)
                     for name, store in self.stores.items()}
        self.properties = {name: StoreProperties(store, property_json)
                           for name, store in self.stores.items()}

    def exists(self, kind: str, record_id: str) -> bool:
        if kind == "contacts":
            return self._state.contact(record_id) is not None
        store = self.stores.get(kind)
        return store is not None and store.get(record_id) is not None

    def _set_primary(self, contact_id: str, company_id: str | None) -> None:
        self._state.apply(contact_id, {PRIMARY_COMPANY: company_id}, source="API")

    def handler(self, endpoint: str, args: dict[str, str]) -> Handler | None:
        """The handler for a route on companies, deals or their associations; None for
        any other route (contacts', engagements')."""
        if endpoint in ASSOCIATION_ENDPOINTS:
            return self._association_handler(endpoint, args)
        kind = kind_named(args.get("object_type", ""))
        if kind is None:
            return None
        if endpoint in PROPERTY_ENDPOINTS:
            admin = self.properties[kind.name]
            method: Handler = getattr(admin, endpoint)
            return method
        api = self.apis[kind.name]
        record = args.get("record_id", "")
        handlers: dict[str, Handler] = {
            "list_contacts": lambda request, _: api.listing(request),
            "get_contact": lambda request, _: api.get(request, record),
            "create_contact": lambda request, _: api.create(request),
            "update_record": lambda request, _: api.update(request, record),
            "archive_contact": lambda request, _: api.delete(record),
            "search": lambda request, _: api.search(request),
            "batch_read": lambda request, _: api.batch_read(request),
            "batch_create": lambda request, _: api.batch_create(request),
            "batch_update": lambda request, _: api.batch_update(request),
            "batch_archive": lambda request, _: api.batch_archive(request)}
        if endpoint not in handlers:
            raise ApiFailure(405, "VALIDATION_ERROR",
                             f"The sandbox does not serve {endpoint} for {kind.name}")
        return handlers[endpoint]

    def _association_handler(self, endpoint: str, args: dict[str, str]) -> Handler | None:
        if endpoint == "association_batch_read" and (
                canonical(args.get("object_type", "")) is None
                or canonical(args.get("to_type", "")) is None):
            return None  # contacts' with engagements (api.py answers none)
        links = self.associations
        if endpoint == "association_batch_read":
            return lambda request, a: links.batch_read(a["object_type"], a["to_type"],
                                                       request)
        if endpoint == "association_put":
            return lambda request, a: links.put_default(a)
        return lambda request, a: links.page(a, request)
