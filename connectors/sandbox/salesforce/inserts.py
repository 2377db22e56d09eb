"""Validation of inserts (POST sobjects/<type>, POST composite/sobjects) in the sandbox org.

An insert is checked like an update (the same JSON coercion, field checks and error codes,
with `createable` instead of `updateable`), plus what only an insert can get wrong: an Id in
the body, and required fields left out, which Salesforce reports as one
REQUIRED_FIELD_MISSING naming every missing field (a Lead without LastName and Company gets
`fields: ["LastName", "Company"]`; an Opportunity needs Name, StageName and CloseDate, an
Account its Name, a Contact its LastName; a timed Event its start and length). Fields the
org fills in itself (OwnerId: the API user; Lead Status: its default) are not required.
Duplicate rules are off, as in a new org: two Leads may share an Email.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.sandbox.salesforce.field_rules import RecordRejected, SaveError, coerce
from connectors.sandbox.salesforce.org import SalesforceOrg, StagedWrite
from connectors.sandbox.salesforce.rows import FieldValue
from connectors.sandbox.salesforce.schema import TEXT_TYPES, ObjectSchema, to_18
from syncer.domain.json_values import JSONValue


def prepare_insert(org: SalesforceOrg, schema: ObjectSchema,
                   values: Mapping[str, JSONValue]) -> StagedWrite:
    """Validate an insert of `values`; raises RequestRejected (the whole request) or
    RecordRejected (this record), changes nothing but the table's next free id."""
    if not schema.createable:
        raise RecordRejected([SaveError("INVALID_TYPE_FOR_OPERATION",
                                        f"entity type cannot be inserted: {schema.name}")])
    coerced = {spec.name: (spec, coerce(schema, spec, value))
               for spec, value in ((org.field_of(schema, key), value)
                                   for key, value in values.items())}
    if "Id" in coerced:
        raise RecordRejected([SaveError("INVALID_FIELD", "cannot specify Id in an insert call",
                                        ("Id",))])
    errors: list[SaveError] = []
    changes: dict[str, FieldValue] = {}
    for name, (spec, value) in coerced.items():
        if value == "" and spec.type in TEXT_TYPES:
            value = None  # Salesforce stores an empty text as null
        if value is None and spec.createable:
            continue  # a default or a REQUIRED_FIELD_MISSING below
        error = org.check_field(schema, spec, value, creating=True)
        if error is not None:
            errors.append(error)
        else:
            changes[name] = value
    missing = [spec.name for spec in schema.fields
               if spec.required_on_create and changes.get(spec.name) is None]
    if schema.name == "Event":
        missing += event_missing(changes)
    if missing:
        errors.insert(0, SaveError("REQUIRED_FIELD_MISSING",
                                   f"Required fields are missing: [{', '.join(missing)}]",
                                   tuple(missing)))
    if errors:
        raise RecordRejected(errors)
    return org.new_row(schema, _canonical_ids(schema, changes))


def _canonical_ids(schema: ObjectSchema, changes: dict[str, FieldValue]
                   ) -> dict[str, FieldValue]:
    """References stored in their 18-character form, as updates store them."""
    return {name: to_18(str(value)) if (spec := schema.field(name)) is not None
            and spec.type == "reference" and value else value
            for name, value in changes.items()}


def event_missing(values: Mapping[str, object]) -> list[str]:
    """What an Event insert lacks: a timed event its start (ActivityDateTime, or
    StartDateTime) and length (DurationInMinutes, or EndDateTime); an all-day event its
    day (ActivityDate, or a start)."""
    def given(*names: str) -> bool:
        return any(values.get(name) is not None for name in names)
    if values.get("IsAllDayEvent"):
        return [] if given("ActivityDate", "ActivityDateTime", "StartDateTime") \
            else ["ActivityDate"]
    return [name for name, alternatives in (
        ("ActivityDateTime", ("ActivityDateTime", "StartDateTime")),
        ("DurationInMinutes", ("DurationInMinutes", "EndDateTime")))
        if not given(*alternatives)]
