"""`syncer setup` on Salesforce: custom fields on Lead and Contact through the Tooling API.

POST tooling/sobjects/CustomField with FullName "Lead.Syncer_Score__c" and Metadata: a
stage becomes a restricted Picklist of the config's stage values, a score or points a
Number, reasons a Text (or LongTextArea past 255 characters), a grade or owner reason a
Text. Only names ending in __c are custom; a standard field (OwnerId, LeadSource) is never
created. An integration user without "Customize Application" gets INSUFFICIENT_ACCESS:
then the field's metadata XML (a source-format .field-meta.xml) is handed back for an
admin to deploy.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.salesforce.answers import first_error
from connectors.salesforce.client import SalesforceClient
from syncer.domain.field_setup import FieldNeed, NoRight
from syncer.domain.json_values import JSONObject

_NO_RIGHT = frozenset({"INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY",
                       "API_DISABLED_FOR_ORG"})


def field_metadata(need: FieldNeed) -> JSONObject:
    """The CustomField Metadata for `need` (Tooling API JSON, Metadata API names)."""
    data: JSONObject = {"label": need.label, "description": need.description}
    if need.kind == "picklist":
        data.update(type="Picklist", valueSet={"restricted": True, "valueSetDefinition": {
            "sorted": False, "value": [{"fullName": v, "default": False, "label": label}
                                       for v, label in need.options]}})
    elif need.kind == "number":
        data.update(type="Number", precision=18, scale=need.scale)
    elif need.kind == "long_text" and need.length > 255:
        data.update(type="LongTextArea", length=need.length, visibleLines=5)
    else:
        data.update(type="Text", length=min(need.length, 255))
    return data


def field_xml(need: FieldNeed, metadata: JSONObject) -> str:
    """The same field as a source-format CustomField file, for a deploy by an admin."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">',
             f"    <fullName>{escape(need.name)}</fullName>"]
    for key in ("label", "description", "type", "length", "visibleLines", "precision",
                "scale"):
        if key in metadata:
            lines.append(f"    <{key}>{escape(str(metadata[key]))}</{key}>")
    if need.kind == "picklist":
        lines += ["    <valueSet>", "        <restricted>true</restricted>",
                  "        <valueSetDefinition>", "            <sorted>false</sorted>"]
        for value, label in need.options:
            lines += ["            <value>", f"                <fullName>{escape(value)}"
                      "</fullName>", "                <default>false</default>",
                      f"                <label>{escape(label)}</label>", "            </value>"]
        lines += ["        </valueSetDefinition>", "    </valueSet>"]
    return "\n".join([*lines, "</CustomField>"])


class SalesforceFields(SalesforceClient):
    """FieldAdmin over one org, with the connector's sign-in and retry layer."""

    objects: tuple[str, ...] = ("Lead", "Contact")
    account_objects: tuple[str, ...] = ("Account",)

    def present(self, object_name: str) -> set[str]:
        self._fields.pop(object_name, None)  # describe afresh: setup may have added some
        return set(self._describe(object_name))

    def creatable(self, name: str) -> bool:
        return name.endswith("__c")

    def prepare(self, dry_run: bool) -> list[str]:
        return []

    def create(self, object_name: str, need: FieldNeed) -> None:
        body = {"FullName": f"{object_name}.{need.name}", "Metadata": field_metadata(need)}

        def post(sf: Salesforce) -> tuple[str, str] | None:
            try:
                sf.toolingexecute("sobjects/CustomField", method="POST", data=body)
            except SalesforceError as error:
                code, message = first_error(error.content)
                if code in _NO_RIGHT or code == "DUPLICATE_DEVELOPER_NAME":
                    return code, message  # answers, not failures to retry
                raise
            return None
        refused = self._call(f"tooling create {object_name}.{need.name}", post)
        if refused is None or refused[0] == "DUPLICATE_DEVELOPER_NAME":
            return  # created, or it exists (created meanwhile)
        raise NoRight(f"Salesforce refused to create {object_name}.{need.name} "
                      f"({refused[0]}: the user needs Customize Application)",
                      self.definition(object_name, need))

    def definition(self, object_name: str, need: FieldNeed) -> str:
        return (f"<!-- force-app/main/default/objects/{object_name}/fields/"
                f"{need.name}.field-meta.xml -->\n" + field_xml(need, field_metadata(need)))
