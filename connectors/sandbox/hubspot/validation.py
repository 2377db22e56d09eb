"""Property values checked as HubSpot checks them before a write: the property must exist
and be writable, an enumeration takes one of its options, a number parses, an owner
property names an active owner. Every bad property of a write is named at once, and the
write fails as a whole (HubSpot's VALIDATION_ERROR body)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Set

from connectors.sandbox.hubspot.schema import PropertyDef


class InputRejected(Exception):
    """One batch input (or edit) that HubSpot would refuse; `code` is the detailed reason."""

    def __init__(self, category: str, code: str, message: str,
                 properties: tuple[tuple[str, str, str], ...] = ()) -> None:
        super().__init__(message)
        self.category = category
        self.code = code
        self.message = message
        #: (property, error code, message) of each bad property
        self.properties = properties

    def details(self) -> list[dict[str, object]]:
        """The error's `errors` entries, each naming its property in
        `context.propertyName` (what HubSpot's newer error bodies carry)."""
        return [{"message": text, "code": code, "context": {"propertyName": [name]}}
                for name, code, text in self.properties]


def check_values(properties: Mapping[str, PropertyDef], owner_ids: Set[str],
                 values: Mapping[str, object]) -> dict[str, str | None]:
    """The values as strings, or InputRejected naming every bad property."""
    issues: list[dict[str, object]] = []
    clean: dict[str, str | None] = {}
    for name, raw in values.items():
        value = None if raw is None else str(raw)
        problem = _problem(properties, owner_ids, name, value)
        if problem is None:
            clean[name] = value
        else:
            code, text = problem
            issues.append({"isValid": False, "message": text, "error": code,
                           "name": name, "localizedErrorMessage": text})
    if issues:
        raise InputRejected("VALIDATION_ERROR", str(issues[0]["error"]),
                            "Property values were not valid: " + json.dumps(issues),
                            tuple((str(i["name"]), str(i["error"]), str(i["message"]))
                                  for i in issues))
    return clean


def _problem(properties: Mapping[str, PropertyDef], owner_ids: Set[str], name: str,
             value: str | None) -> tuple[str, str] | None:
    definition = properties.get(name)
    if definition is None:
        return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
    if definition.read_only:
        return "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
    if value in (None, ""):
        return None  # clearing a value is always allowed
    assert value is not None
    if definition.owner_options:
        if value not in owner_ids:
            return "INVALID_OWNER_ID", f"{value} is not a valid owner id"
    elif definition.type == "enumeration":
        allowed = [option for option, _ in definition.options]
        if value not in allowed:
            return ("INVALID_OPTION",
                    f"{value} was not one of the allowed options: {allowed}")
    elif definition.type == "number":
        try:
            float(value)
        except ValueError:
            return "INVALID_NUMBER", f"{value} was not a valid number."
    return None
