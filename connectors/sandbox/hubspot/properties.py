"""The sandbox's CRM properties API: creating contact properties and property groups.

What `syncer setup` (and any admin tool) calls on a real portal: POST
/crm/v3/properties/contacts/groups, then POST /crm/v3/properties/contacts for each
property. Answers follow HubSpot: 201 with the created definition; 409
OBJECT_ALREADY_EXISTS for a name that is taken; 400 VALIDATION_ERROR for a missing field,
an unknown group, a `type`/`fieldType` pair HubSpot refuses, an enumeration without options
or a name in HubSpot's reserved `hs_` namespace. A created property is then listed, read,
written and returned on contacts like any other (it lives in PortalState.properties).
"""

from __future__ import annotations

import threading
from typing import Protocol

from werkzeug.wrappers import Request

from connectors.sandbox.hubspot.http import (
    Answer,
    ApiFailure,
    Json,
    json_body,
    json_list,
    validation_error,
)
from connectors.sandbox.hubspot.schema import PropertyDef
from syncer.domain.json_values import JSONObject

#: type -> the fieldTypes HubSpot accepts with it.
FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"text", "textarea", "html", "phonenumber", "file"}),
    "number": frozenset({"number", "calculation_equation"}),
    "enumeration": frozenset({"select", "radio", "checkbox", "booleancheckbox"}),
    "bool": frozenset({"booleancheckbox"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
}


def _text(body: JSONObject, key: str, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise validation_error(f"Property {key} is required and must be a string",
                               **{key: ["required"]})
    return value


class PropertyHolder(Protocol):
    """What holds one object type's properties: the contacts' PortalState, or a company
    or deal RecordStore (connectors/sandbox/hubspot/objects.py)."""

    @property
    def lock(self) -> threading.RLock: ...

    @property
    def properties(self) -> dict[str, PropertyDef]: ...

    @property
    def groups(self) -> dict[str, str]: ...


class PropertyAdmin:
    """Property and group handlers (a base of HubSpotApi, which sets `holder` to its
    PortalState; the companies' and deals' handlers set their store)."""

    holder: PropertyHolder

    def property_json(self, prop: PropertyDef, order: int) -> Json:
        raise NotImplementedError  # HubSpotApi's

    @staticmethod
    def group_json(name: str, label: str, order: int) -> Json:
        return {"name": name, "label": label, "displayOrder": order, "archived": False}

    def list_groups(self, request: Request, args: dict[str, str]) -> Answer:
        with self.holder.lock:
            groups = list(self.holder.groups.items())
        return 200, {"results": [self.group_json(n, label, i)
                                 for i, (n, label) in enumerate(groups)]}

    def create_group(self, request: Request, args: dict[str, str]) -> Answer:
        body = json_body(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        name, label = _text(body, "name"), _text(body, "label")
        with self.holder.lock:
            if name in self.holder.groups:
                raise ApiFailure(409, "OBJECT_ALREADY_EXISTS",
                                 f"A property group named '{name}' already exists.")
            self.holder.groups[name] = label
            order = len(self.holder.groups) - 1
        return 201, self.group_json(name, label, order)

    def get_property(self, request: Request, args: dict[str, str]) -> Answer:
        with self.holder.lock:
            names = list(self.holder.properties)
            prop = self.holder.properties.get(args["property_name"])
        if prop is None:
            raise ApiFailure(404, "OBJECT_NOT_FOUND",
                             f"Unable to find property {args['property_name']}")
        return 200, self.property_json(prop, names.index(prop.name))

    def delete_property(self, request: Request, args: dict[str, str]) -> Answer:
        """Archive a custom property: 204; HubSpot's own properties cannot be deleted."""
        name = args["property_name"]
        with self.holder.lock:
            prop = self.holder.properties.get(name)
            if prop is None:
                raise ApiFailure(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
            if prop.hubspot_defined:
                raise validation_error(f"Property {name} is defined by HubSpot and cannot be "
                                       "deleted", name=["readOnlyDefinition"])
            del self.holder.properties[name]
        return 204, None

    def create_property(self, request: Request, args: dict[str, str]) -> Answer:
        body = json_body(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        prop = self._definition(body)
        with self.holder.lock:
            if prop.group_name not in self.holder.groups:
                raise validation_error(f"Property group '{prop.group_name}' does not exist",
                                       groupName=["invalid"])
            if prop.name in self.holder.properties:
                raise ApiFailure(409, "OBJECT_ALREADY_EXISTS",
                                 f"Property named '{prop.name}' already exists.")
            self.holder.properties[prop.name] = prop
            order = len(self.holder.properties) - 1
        return 201, self.property_json(prop, order)

    @staticmethod
    def _definition(body: JSONObject) -> PropertyDef:
        name, label = _text(body, "name"), _text(body, "label")
        kind, field_type = _text(body, "type"), _text(body, "fieldType")
        group = _text(body, "groupName")
        if name.startswith("hs_") or not name.replace("_", "a").isalnum() \
                or name != name.lower():
            raise validation_error(f"Property name '{name}' is invalid: use lowercase "
                                   "letters, digits and '_'; the prefix hs_ is reserved",
                                   name=["invalid"])
        if kind not in FIELD_TYPES or field_type not in FIELD_TYPES[kind]:
            raise validation_error(f"fieldType '{field_type}' is not valid for a property "
                                   f"of type '{kind}'", fieldType=["invalid"])
        options = tuple((str(o.get("value")), str(o.get("label")))
                        for o in json_list(body.get("options") or None, "options")
                        if isinstance(o, dict))
        if kind == "enumeration" and field_type != "booleancheckbox" and not options:
            raise validation_error("A property of type enumeration needs options",
                                   options=["required"])
        return PropertyDef(name, label, kind, field_type, group,
                           _text(body, "description", required=False), options=options,
                           hubspot_defined=False)
