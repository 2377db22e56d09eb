"""Associations between the sandbox portal's contacts, companies and deals (v4 API).

    POST /crm/v4/associations/{from}/{to}/batch/read   {"inputs": [{"id": ...}]}
    PUT  /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}
    GET  /crm/v4/objects/{from}/{id}/associations/{to}?limit&after

An association is kept in both directions with HubSpot's HUBSPOT_DEFINED type ids: the
unlabeled one (contact->company 279, company->contact 280, deal->contact 3,
contact->deal 4, deal->company 341, company->deal 342) and, for a contact's or a deal's
primary company, the primary one too (1/2, 5/6). A contact's primary company is also its
`associatedcompanyid` property, both ways: the first company associated with a contact
becomes its primary and sets the property (bumping `lastmodifieddate`, as HubSpot does),
and writing the property associates that company as the primary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from werkzeug.wrappers import Request

from connectors.sandbox.hubspot.http import (
    Answer,
    ApiFailure,
    Json,
    iso_millis,
    json_body,
    validation_error,
)
from connectors.sandbox.hubspot.objects import kind_named
from connectors.sandbox.hubspot.validation import InputRejected

CONTACT_NAMES = frozenset({"contacts", "contact", "0-1", "CONTACT"})
PRIMARY_COMPANY = "associatedcompanyid"
#: (from, to) -> (unlabeled type id, primary type id or None)
TYPE_IDS: Mapping[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1), ("companies", "contacts"): (280, 2),
    ("deals", "contacts"): (3, None), ("contacts", "deals"): (4, None),
    ("deals", "companies"): (341, 5), ("companies", "deals"): (342, 6)}
DEFINED_BY_HUBSPOT = "HUBSPOT_DEFINED"
MAX_INPUTS, MAX_PAGE = 1000, 500
#: (object type, id) -> whether such a live record exists
Exists = Callable[[str, str], bool]
#: (contact id, company id or None): set the contact's associatedcompanyid
SetPrimary = Callable[[str, str | None], None]


def canonical(name: str) -> str | None:
    """contacts, companies or deals for any spelling the API accepts; None otherwise."""
    if name in CONTACT_NAMES or name.lower() in CONTACT_NAMES:
        return "contacts"
    kind = kind_named(name)
    return kind.name if kind is not None else None


def _pair(from_name: str, to_name: str) -> tuple[str, str]:
    pair = (canonical(from_name) or from_name, canonical(to_name) or to_name)
    if pair not in TYPE_IDS:
        raise validation_error(f"The sandbox associates contacts, companies and deals with "
                               f"each other, not {from_name} with {to_name}")
    return pair


class Associations:
    """Every association of the portal, both directions, and which ones are primary."""

    def __init__(self, exists: Exists, set_primary: SetPrimary) -> None:
        self._exists = exists
        self._set_primary = set_primary
        self._lock = threading.RLock()
        #: (from, from id, to, to id) -> whether it is the primary association
        self._links: dict[tuple[str, str, str, str], bool] = {}

    # -- the model -----------------------------------------------------------------------
    def associate(self, from_name: str, from_id: str, to_name: str, to_id: str,
                  primary: bool | None = None) -> list[Json]:
        """Link two records (both ways); a company becomes the primary one of a contact or
        deal that has none (or when `primary`). The association specs made, both ways."""
        source, target = _pair(from_name, to_name)
        for kind, record in ((source, from_id), (target, to_id)):
            if not self._exists(kind, record):
                raise ApiFailure(404, "OBJECT_NOT_FOUND",
                                 f"No {kind[:-1]} with id {record}")
        with self._lock:
            holder = self._primary_holder(source, from_id, target, to_id)
            if primary is None:
                primary = holder is not None and self.primary_of(*holder) is None
            self._link(source, from_id, target, to_id, bool(primary) and holder is not None)
        if primary and holder == ("contacts", from_id if source == "contacts" else to_id):
            self._set_primary(holder[1], to_id if source == "contacts" else from_id)
        return self.specs(source, from_id, target, to_id)

    @staticmethod
    def _primary_holder(source: str, from_id: str, target: str, to_id: str
                        ) -> tuple[str, str] | None:
        """The contact or deal whose primary company this link may be (None: no company)."""
        if target == "companies" and source in ("contacts", "deals"):
            return source, from_id
        if source == "companies" and target in ("contacts", "deals"):
            return target, to_id
        return None

    def _link(self, source: str, from_id: str, target: str, to_id: str,
              primary: bool) -> None:
        if primary:  # one primary company per contact or deal
            holder = self._primary_holder(source, from_id, target, to_id)
            assert holder is not None
            for key in [k for k, p in self._links.items() if p and k[0] == holder[0]
                        and k[1] == holder[1] and k[2] == "companies"]:
                self._links[key] = False
                self._links[(key[2], key[3], key[0], key[1])] = False
        self._links[(source, from_id, target, to_id)] = primary
        self._links[(target, to_id, source, from_id)] = primary

    def link_seeded(self, contact_id: str, company_id: str) -> None:
        """A contact's primary company as the portal held it from the start (its
        associatedcompanyid is already set: company_seed.py)."""
        with self._lock:
            self._link("contacts", contact_id, "companies", company_id, True)

    def primary_of(self, kind: str, record_id: str) -> str | None:
        """The primary company id of a contact or deal, or None."""
        with self._lock:
            return next((k[3] for k, p in self._links.items()
                         if p and k[0] == kind and k[1] == record_id
                         and k[2] == "companies"), None)

    def targets(self, from_name: str, from_id: str, to_name: str) -> list[tuple[str, bool]]:
        """(id, primary) of every record of `to_name` linked to this one, in id order."""
        source, target = _pair(from_name, to_name)
        with self._lock:
            found = [(k[3], p) for k, p in self._links.items()
                     if k[0] == source and k[1] == from_id and k[2] == target]
        return sorted(found, key=lambda item: int(item[0]))

    def contact_changed(self, kind: str, contact_id: str, values: dict[str, str | None],
                        source: str) -> None:
        """PortalState listener: a written associatedcompanyid makes that company the
        contact's primary one (an unknown company id links nothing)."""
        company = values.get(PRIMARY_COMPANY)
        if not company or not self._exists("companies", company):
            return
        with self._lock:
            if self.primary_of("contacts", contact_id) != company:
                self._link("contacts", contact_id, "companies", company, True)

    def specs(self, source: str, from_id: str, target: str, to_id: str) -> list[Json]:
        """The association specs between two linked records, both directions."""
        made: list[Json] = []
        for a, a_id, b, b_id in ((source, from_id, target, to_id),
                                 (target, to_id, source, from_id)):
            made += [{"associationSpec": spec_json(spec), "from": {"id": a_id},
                      "to": {"id": b_id}} for spec in self.types(a, a_id, b, b_id)]
        return made

    def types(self, source: str, from_id: str, target: str, to_id: str) -> list[Json]:
        unlabeled, primary_id = TYPE_IDS[(source, target)]
        with self._lock:
            primary = self._links.get((source, from_id, target, to_id))
        types: list[Json] = [{"category": DEFINED_BY_HUBSPOT, "typeId": unlabeled,
                              "label": None}]
        if primary and primary_id is not None:
            types.insert(0, {"category": DEFINED_BY_HUBSPOT, "typeId": primary_id,
                             "label": "Primary"})
        return types

    # -- handlers ------------------------------------------------------------------------
    def batch_read(self, from_name: str, to_name: str, request: Request) -> Answer:
        source, target = _pair(from_name, to_name)
        body = json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or len(inputs) > MAX_INPUTS:
            raise validation_error(f"inputs must be a list of at most {MAX_INPUTS} objects")
        started = iso_millis(datetime.now(timezone.utc))
        results: list[Json] = []
        for item in inputs:
            record_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            linked = self.targets(source, record_id, target)
            if linked:  # a record without associations is left out, as HubSpot does
                results.append({"from": {"id": record_id}, "to": [
                    {"toObjectId": int(to_id),
                     "associationTypes": self.types(source, record_id, target, to_id)}
                    for to_id, _ in linked]})
        return 200, {"status": "COMPLETE", "results": results, "startedAt": started,
                     "completedAt": iso_millis(datetime.now(timezone.utc))}

    def put_default(self, args: Mapping[str, str]) -> Answer:
        started = iso_millis(datetime.now(timezone.utc))
        try:
            results = self.associate(args["object_type"], args["record_id"], args["to_type"],
                                     args["to_id"])
        except InputRejected as rejected:
            raise ApiFailure(400, rejected.category, rejected.message) from None
        return 200, {"status": "COMPLETE", "results": results, "startedAt": started,
                     "completedAt": iso_millis(datetime.now(timezone.utc))}

    def page(self, args: Mapping[str, str], request: Request) -> Answer:
        source, target = _pair(args["object_type"], args["to_type"])
        if not self._exists(source, args["record_id"]):
            raise ApiFailure(404, "OBJECT_NOT_FOUND",
                             f"No {source[:-1]} with id {args['record_id']}")
        limit = _number(request.args.get("limit"), MAX_PAGE, "limit")
        start = _number(request.args.get("after"), 0, "after")
        linked = self.targets(source, args["record_id"], target)
        body: Json = {"results": [
            {"toObjectId": int(to_id),
             "associationTypes": self.types(source, args["record_id"], target, to_id)}
            for to_id, _ in linked[start:start + min(limit, MAX_PAGE)]]}
        if start + limit < len(linked):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return 200, body


def spec_json(association_type: Json) -> Json:
    return {"associationCategory": association_type["category"],
            "associationTypeId": association_type["typeId"]}


def _number(raw: str | None, default: int, name: str) -> int:
    if raw in (None, ""):
        return default
    assert raw is not None
    if not raw.isdigit() or (name == "limit" and int(raw) < 1):
        raise validation_error(f"{name} must be a positive integer, got '{raw}'")
    return int(raw)
