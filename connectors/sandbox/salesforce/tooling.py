"""The sandbox's Tooling API: creating custom fields (`tooling/sobjects/CustomField`).

What `syncer setup` calls on a real org: POST /services/data/vNN.N/tooling/sobjects/
CustomField with {"FullName": "Lead.Syncer_Score__c", "Metadata": {"type": "Number",
"label": ..., "precision": 18, "scale": 0}}. Answers follow Salesforce: 201 {"id",
"success", "errors", "warnings", "infos"}; 400 DUPLICATE_DEVELOPER_NAME for a field the
object has; 400 FIELD_INTEGRITY_EXCEPTION for metadata Salesforce refuses (no label, a
Text without length, a Picklist without values, a name without __c); 403
INSUFFICIENT_ACCESS when the user lacks "Customize Application" (`can_customize`).

A limit of the emulator: the org's schema is fixed, so it can create only the custom
fields it knows (syncer's, on Lead and Contact, in a world started without them); those
then appear in describe, queries and writes with the sandbox's definition. Every other new
field is refused with a message saying so.
"""

from __future__ import annotations

import itertools
import threading

from werkzeug.wrappers import Request

from connectors.sandbox.salesforce.org import SalesforceOrg
from connectors.sandbox.salesforce.schema import make_id, schema_for
from syncer.domain.json_values import JSONObject, JSONValue

#: Metadata types the Tooling API accepts for a custom field (those setup uses and a few).
FIELD_TYPES = frozenset({"Text", "TextArea", "LongTextArea", "Number", "Picklist",
                         "Checkbox", "Date", "DateTime", "Email", "Phone", "Url",
                         "Percent", "Currency"})


def _errors(status: int, code: str, message: str) -> tuple[int, object]:
    return status, [{"message": message, "errorCode": code, "fields": []}]


def metadata_problem(metadata: JSONObject) -> str | None:
    """Why Salesforce would refuse this CustomField metadata, or None."""
    kind = metadata.get("type")
    if kind not in FIELD_TYPES:
        return f"Invalid field type: {kind!r}"
    if not str(metadata.get("label") or "").strip():
        return "Field label: You must enter a value"
    length = metadata.get("length")
    if kind == "Text" and not (isinstance(length, int) and 1 <= length <= 255):
        return "Length: Text fields need a length from 1 to 255"
    if kind == "LongTextArea" and not (isinstance(length, int) and 256 <= length <= 131072
                                       and isinstance(metadata.get("visibleLines"), int)):
        return "Long text area fields need a length from 256 to 131072 and visibleLines"
    if kind in ("Number", "Percent", "Currency"):
        precision, scale = metadata.get("precision"), metadata.get("scale", 0)
        if not (isinstance(precision, int) and 1 <= precision <= 18
                and isinstance(scale, int) and 0 <= scale <= precision):
            return "Precision must be 1 to 18 and scale 0 to precision"
    if kind == "Picklist":
        values = _picklist_values(metadata)
        if not values or not all(isinstance(v, dict) and v.get("fullName") for v in values):
            return "Picklist: valueSet.valueSetDefinition.value needs at least one value"
    return None


def _picklist_values(metadata: JSONObject) -> list[JSONValue] | None:
    """The picklist's values (valueSet.valueSetDefinition.value), None when not a list."""
    value_set = metadata.get("valueSet")
    definition = value_set.get("valueSetDefinition") if isinstance(value_set, dict) else None
    values = definition.get("value") if isinstance(definition, dict) else None
    return values if isinstance(values, list) else None


class ToolingApi:
    """CustomField creation over one org; `can_customize` False answers every create
    INSUFFICIENT_ACCESS (an integration user without "Customize Application")."""

    def __init__(self, org: SalesforceOrg, *, can_customize: bool = True) -> None:
        self.org = org
        self.can_customize = can_customize
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def handle(self, request: Request, parts: list[str]) -> tuple[int, object]:
        if parts != ["sobjects", "CustomField"]:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method != "POST":
            return _errors(405, "METHOD_NOT_ALLOWED",
                           f"HTTP Method '{request.method}' not allowed. Allowed are POST")
        body: JSONValue = request.get_json(silent=True)
        metadata = body.get("Metadata") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(metadata, dict):
            return _errors(400, "JSON_PARSER_ERROR",
                           "The request body needs FullName and Metadata")
        if not self.can_customize:
            return _errors(403, "INSUFFICIENT_ACCESS",
                           "insufficient access rights on object id: the user needs the "
                           "Customize Application permission")
        return self._create(str(body.get("FullName") or ""), metadata)

    def _create(self, full_name: str, metadata: JSONObject) -> tuple[int, object]:
        object_name, _, field = full_name.partition(".")
        schema = schema_for(object_name)
        if schema is None or not field:
            return _errors(400, "FIELD_INTEGRITY_EXCEPTION",
                           f"FullName {full_name!r}: use Object.Field__c on an existing object")
        if not field.endswith("__c"):
            return _errors(400, "FIELD_INTEGRITY_EXCEPTION",
                           f"{field}: a custom field's name ends with __c")
        problem = metadata_problem(metadata)
        if problem is not None:
            return _errors(400, "FIELD_INTEGRITY_EXCEPTION", problem)
        key = (schema.name, field.lower())
        with self.org.lock:
            if schema.field(field) is not None and key not in self.org.absent:
                return _errors(400, "DUPLICATE_DEVELOPER_NAME",
                               f"There is already a field named {field[:-3]} on {schema.name}.")
            if key not in self.org.absent:
                return _errors(400, "FIELD_INTEGRITY_EXCEPTION",
                               f"{full_name}: the sandbox org can create only syncer's own "
                               "custom fields (its schema is fixed)")
            self.org.absent.discard(key)
        with self._lock:
            field_id = make_id("00N", next(self._ids))
        return 201, {"id": field_id, "success": True, "errors": [], "warnings": [],
                     "infos": []}
