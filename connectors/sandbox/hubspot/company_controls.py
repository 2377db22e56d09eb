"""The HubSpot sandbox's company and deal operations in the control API: what an admin or
a rep does by hand in HubSpot's UI (connectors/sandbox/control.py dispatches them).

    POST /_sandbox/create_company {"name": ..., "domain"?: ..., "owner"?: owner id or
         email, <any company property>: value}                     -> {"id": company id}
    POST /_sandbox/edit_company   {"id": company id, "field": property, "value": v}
         (+ "stamp": ISO time: the modification time it gets instead of now)
    POST /_sandbox/associate      {"id" or "email": the contact, "company_id": ...,
         "primary"?: true}  the contact's company (its first one becomes its primary
         company, `associatedcompanyid`; "primary": true makes this one the primary)
    POST /_sandbox/close_deal     {"id" or "email": the contact, "won"?: true|false,
         "owner"?: owner id or email, "name"?: text, "amount"?: n}
         a deal in stage closedwon / closedlost, closedate now, associated with the
         contact and its primary company

Values go through the API's validation (a refused one answers 400 naming the property)
and are stamped at the sandbox clock's time, so what these make is what the API serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from connectors.sandbox.control import Operation
from connectors.sandbox.hubspot.engagement_controls import _contact, _owner
from connectors.sandbox.hubspot.http import ApiFailure, iso_millis
from connectors.sandbox.hubspot.object_schema import LOST_STAGE, WON_STAGE
from connectors.sandbox.hubspot.objects import CrmRecord, RecordStore
from connectors.sandbox.hubspot.portal import Portal
from connectors.sandbox.hubspot.validation import InputRejected
from syncer.domain.json_values import JSONObject


def _checked(store: RecordStore, values: Mapping[str, object]) -> dict[str, str | None]:
    try:
        return store.check(values)
    except InputRejected as rejected:
        raise ValueError(rejected.message) from None


def _company(sandbox: Portal, value: object) -> CrmRecord:
    record = sandbox.api.objects.companies.get(str(value or ""))
    if record is None:
        raise ValueError(f"company_id: no company {value!r} (create_company makes one)")
    return record


def create_company(sandbox: Portal, body: JSONObject) -> dict[str, str]:
    if not str(body.get("name") or "").strip():
        raise ValueError("name: a company needs a name")
    values = {key: value for key, value in body.items() if key != "owner"}
    if body.get("owner") is not None:
        values["hubspot_owner_id"] = _owner(sandbox, body["owner"])
    store = sandbox.api.objects.companies
    return {"id": store.add(_checked(store, values)).id}


def edit_company(sandbox: Portal, body: JSONObject) -> dict[str, object]:
    company = _company(sandbox, body.get("id"))
    store = sandbox.api.objects.companies
    field = str(body.get("field") or "")
    record = store.apply(company.id, _checked(store, {field: body.get("value")}))
    if body.get("stamp") is not None:
        stamp = datetime.fromisoformat(str(body["stamp"]))
        if stamp.tzinfo is None:
            raise ValueError("stamp: add a UTC offset, e.g. 2026-11-20T11:30:00+00:00")
        store.touch(record, stamp)
    return {"id": record.id, **record.properties}


def associate(sandbox: Portal, body: JSONObject) -> dict[str, object]:
    contact = _contact(sandbox, body)
    company = _company(sandbox, body.get("company_id"))
    links = sandbox.api.objects.associations
    try:
        links.associate("contacts", contact, "companies", company.id,
                        primary=True if body.get("primary") else None)
    except ApiFailure as failure:
        raise ValueError(failure.message) from None
    return {"contact_id": contact, "company_id": company.id,
            "primary_company_id": links.primary_of("contacts", contact)}


def close_deal(sandbox: Portal, body: JSONObject) -> dict[str, object]:
    contact = _contact(sandbox, body)
    won = body.get("won", True)
    if not isinstance(won, bool):
        raise ValueError("won: true for a won deal (the default), false for a lost one")
    store = sandbox.api.objects.deals
    values: dict[str, object] = {
        "dealname": str(body.get("name") or ("Won deal" if won else "Lost deal")),
        "dealstage": WON_STAGE if won else LOST_STAGE, "pipeline": "default",
        "closedate": iso_millis(sandbox.now())}
    if body.get("amount") is not None:
        values["amount"] = body["amount"]
    if body.get("owner") is not None:
        values["hubspot_owner_id"] = _owner(sandbox, body["owner"])
    deal = store.add(_checked(store, values))
    links = sandbox.api.objects.associations
    links.associate("deals", deal.id, "contacts", contact)
    company = links.primary_of("contacts", contact)
    if company is not None:
        links.associate("deals", deal.id, "companies", company)
    return {"id": deal.id, "contact_id": contact, "company_id": company,
            "dealstage": deal.properties["dealstage"]}


def company_controls(sandbox: Portal) -> dict[str, Operation]:
    """The operations above, bound to one sandbox (server.py merges them in)."""
    return {"create_company": lambda body: create_company(sandbox, body),
            "edit_company": lambda body: edit_company(sandbox, body),
            "associate": lambda body: associate(sandbox, body),
            "close_deal": lambda body: close_deal(sandbox, body)}

