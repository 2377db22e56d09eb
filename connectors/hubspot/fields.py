"""`syncer setup` on HubSpot: contact and company properties through the CRM properties
API.

Properties syncer creates live in one property group, "syncer", per object type (created
first; a 409 means it is there): contacts always, companies when account fields are
asked for (`set_up(..., account_needs=...)` creates those on `account_objects`). A stage
becomes an enumeration (select) with the config's stage values as options, a score or
points a number, reasons a textarea, a grade or owner reason a text. Names starting with
hs_ are HubSpot's own and never created. A private app without the
`crm.schemas.<object>.write` scope gets 403: the property JSON is handed back for an admin.
"""

from __future__ import annotations

import json
from typing import NotRequired, TypedDict

from hubspot import HubSpot  # type: ignore[import-untyped]
from hubspot.crm.properties import (  # type: ignore[import-untyped]
    OptionInput,
    PropertyCreate,
    PropertyGroupCreate,
)
from hubspot.crm.properties.exceptions import ApiException  # type: ignore[import-untyped]

from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.field_setup import FieldNeed, NoRight

GROUP = "syncer"
_TYPES = {"picklist": ("enumeration", "select"), "number": ("number", "number"),
          "text": ("string", "text"), "long_text": ("string", "textarea")}


class PropertyOption(TypedDict):
    label: str
    value: str
    displayOrder: int
    hidden: bool


class PropertyBody(TypedDict):
    """The body of POST /crm/v3/properties/contacts."""

    name: str
    label: str
    type: str
    fieldType: str
    groupName: str
    description: str
    formField: bool
    options: NotRequired[list[PropertyOption]]


def property_body(need: FieldNeed) -> PropertyBody:
    """The POST /crm/v3/properties/contacts body for `need`."""
    kind, field_type = _TYPES[need.kind]
    body: PropertyBody = {"name": need.name, "label": need.label, "type": kind,
                            "fieldType": field_type, "groupName": GROUP,
                            "description": need.description, "formField": False}
    if need.kind == "picklist":
        body["options"] = [{"label": label, "value": value, "displayOrder": i,
                            "hidden": False} for i, (value, label) in enumerate(need.options)]
    return body


class HubSpotFields:
    """FieldAdmin over one portal (its own API client: setup is not a sync)."""

    objects: tuple[str, ...] = ("contacts",)
    account_objects: tuple[str, ...] = ("companies",)

    def __init__(self, settings: ConnectorSettings) -> None:
        token = settings.credentials.get("access_token", "")
        extra = {"ssl_ca_cert": settings.ca_file} if settings.ca_file else {}
        client = HubSpot(access_token=token, retry=False, host=settings.base_url, **extra)
        self.name = settings.name
        self._token = token
        self._timeout = settings.timeout_seconds
        #: object types whose "syncer" group is known to exist
        self._grouped: set[str] = set()
        self._core = client.crm.properties.core_api
        self._groups = client.crm.properties.groups_api
        for api in (self._core, self._groups):
            api.api_client.configuration.host = settings.base_url

    def _fail(self, what: str, error: ApiException) -> ConnectorError:
        detail = str(error.body or error.reason).replace(self._token, "<redacted>")
        return ConnectorError(f"connector {self.name}: HubSpot {what} answered "
                              f"{error.status}: {detail[:300]}")

    def present(self, object_name: str) -> set[str]:
        try:
            found = self._core.get_all(object_type=object_name, archived=False,
                                       _request_timeout=self._timeout)
        except ApiException as error:
            raise self._fail("properties list", error) from None
        return {str(p.name).lower() for p in found.results or []}

    def creatable(self, name: str) -> bool:
        return not name.lower().startswith("hs_")

    def prepare(self, dry_run: bool) -> list[str]:
        """The "syncer" group on contacts (a company property's group is made by its
        first create: a property needs a group of its own object type)."""
        self._grouped.add("contacts")
        return self._group("contacts", dry_run)

    def _group(self, object_name: str, dry_run: bool) -> list[str]:
        try:
            groups = self._groups.get_all(object_type=object_name,
                                          _request_timeout=self._timeout)
        except ApiException as error:
            raise self._fail("property groups list", error) from None
        if any(g.name == GROUP for g in groups.results or []):
            return []
        where = f"property group {GROUP!r}" + ("" if object_name == "contacts"
                                                else f" on {object_name}")
        if dry_run:
            return [f"would create {where}"]
        try:
            self._groups.create(object_type=object_name, property_group_create=(
                PropertyGroupCreate(name=GROUP, label="Syncer", display_order=-1)),
                _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 403:
                raise NoRight(f"HubSpot refused to create the {where} (403)",
                              json.dumps({"name": GROUP, "label": "Syncer"})) from None
            if error.status != 409:  # 409: created meanwhile
                raise self._fail("property group create", error) from None
        return [f"created {where}"]

    def create(self, object_name: str, need: FieldNeed) -> None:
        if object_name not in self._grouped:
            self._group(object_name, dry_run=False)
            self._grouped.add(object_name)
        body = property_body(need)
        options = [OptionInput(label=o["label"], value=o["value"],
                               display_order=o["displayOrder"], hidden=False)
                   for o in body.get("options", [])]
        create = PropertyCreate(name=body["name"], label=body["label"], type=body["type"],
                                field_type=body["fieldType"], group_name=GROUP,
                                description=body["description"], form_field=False,
                                options=options or None)
        try:
            self._core.create(object_type=object_name, property_create=create,
                              _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 403:
                raise NoRight(f"HubSpot refused to create {need.name} (403: the private app "
                              f"needs the crm.schemas.{object_name}.write scope)",
                              self.definition(object_name, need)) from None
            if error.status != 409:  # 409: it exists (created meanwhile): nothing to do
                raise self._fail(f"property create {need.name}", error) from None

    def definition(self, object_name: str, need: FieldNeed) -> str:
        return (f"POST /crm/v3/properties/{object_name} "
                + json.dumps(property_body(need), sort_keys=False))

    def close(self) -> None:
        for api in (self._core, self._groups):
            api.api_client.rest_client.pool_manager.clear()
