"""The sObject schemas the Salesforce sandbox serves, and how their values look on the wire.

One table of field definitions drives everything the emulator does with a field: describe
answers, SOQL type checks, JSON rendering and write validation. Keeping it in one place is
what keeps those four consistent with each other, as they are in a real org. The standard
fields of the objects syncer reads are in their own tables (standard_people.py,
standard_sales.py, standard_activities.py); syncer's custom fields are added here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timezone

from connectors.sandbox.salesforce.field_spec import FieldSpec as FieldSpec
from connectors.sandbox.salesforce.field_spec import ObjectSchema as ObjectSchema
from connectors.sandbox.salesforce.field_spec import field_spec as _f
from connectors.sandbox.salesforce.picklists import CAMPAIGN_TYPES
from connectors.sandbox.salesforce.standard_activities import (
    CAMPAIGN_MEMBER_FIELDS,
    EVENT_FIELDS,
    TASK_FIELDS,
)
from connectors.sandbox.salesforce.standard_people import CONTACT_FIELDS, LEAD_FIELDS
from connectors.sandbox.salesforce.standard_sales import ACCOUNT_FIELDS, OPPORTUNITY_FIELDS

#: Field types whose values are strings on the wire and compare case-insensitively.
TEXT_TYPES: frozenset[str] = frozenset(
    {"string", "email", "picklist", "textarea", "url", "phone", "combobox"})
ID_TYPES: frozenset[str] = frozenset({"id", "reference"})
NUMBER_TYPES: frozenset[str] = frozenset({"double", "int", "currency", "percent"})

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")


def to_18(record_id: str) -> str:
    """The case-safe 18-character form of a 15- or 18-character Salesforce id."""
    base = record_id[:15]
    suffix = ""
    for chunk in range(3):
        flags = 0
        for position in range(5):
            if "A" <= base[chunk * 5 + position] <= "Z":
                flags |= 1 << position
        suffix += _CHECKSUM[flags]
    return base + suffix


def is_valid_id(value: str) -> bool:
    """True for a well-formed 15-char id or an 18-char id whose checksum matches."""
    if not _ID_RE.match(value):
        return False
    return len(value) == 15 or to_18(value[:15]) == value


def make_id(prefix: str, number: int) -> str:
    """A deterministic 18-char id: key prefix, a fixed pod part, `number` in base 62."""
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
        if number == 0:
            break
    return to_18(prefix + "8c0" + digits.rjust(9, "0"))


#: The sandbox org's id (its tokens, identity URL and outbound messages carry it).
ORG_ID = make_id("00D", 1)


def id_number(record_id: str) -> int | None:
    """The number `make_id` encoded in an id (15 or 18 chars), or None if it is not one."""
    if not isinstance(record_id, str) or len(record_id) < 15 or record_id[3:6] != "8c0":
        return None
    number = 0
    for char in record_id[6:15]:
        digit = _BASE62.find(char)
        if digit < 0:
            return None
        number = number * 62 + digit
    return number



#: syncer's stages, the values of its Syncer_Stage__c picklist
SYNCER_STAGES = ("Subscriber", "Lead", "MQL", "SAL", "SQL", "Opportunity", "Customer")


def _audit_fields() -> tuple[FieldSpec, ...]:
    return (_f("CreatedDate", "datetime", required=True),
            _f("LastModifiedDate", "datetime", required=True),
            _f("SystemModstamp", "datetime", required=True))


def _syncer_fields() -> tuple[FieldSpec, ...]:
    """The custom fields a syncer install adds to Lead and Contact.

    Besides stage, score, grade and reasons: the named scores (config `fields.scores`), the
    primary score's fit and engagement points, and the example model's lead_routing score.
    Points are Number(4, 2): syncer writes them with two decimals at most (number_text).
    """
    return (_f("Syncer_Stage__c", "picklist", 255, rw=True, picklist=SYNCER_STAGES,
               restricted=True),
            _f("Syncer_Score__c", "double", rw=True, precision=3, scale=0),
            _f("Syncer_Fit_Grade__c", "string", 2, rw=True),
            _f("Syncer_Reasons__c", "string", 255, rw=True),
            _f("Syncer_Owner_Reason__c", "string", 255, rw=True),
            _points("Syncer_Fit__c"), _points("Syncer_Engagement__c"),
            _f("Syncer_Lead_Routing_Score__c", "double", rw=True, precision=3, scale=0),
            _points("Syncer_Lead_Routing_Fit__c"), _points("Syncer_Lead_Routing_Engagement__c"),
            _f("Syncer_Lead_Routing_Grade__c", "string", 8, rw=True),
            _f("Syncer_Buying_Role__c", "string", 80, rw=True))


def _points(name: str) -> FieldSpec:
    """A custom Number(4, 2) field for score points (describe: precision 6, scale 2)."""
    return _f(name, "double", rw=True, precision=6, scale=2)


def _syncer_account_fields() -> tuple[FieldSpec, ...]:
    """The custom fields a syncer install adds to Account (issue 20): the account's score,
    grade, MQA flag (text "true"/"false", as setup creates it) and reasons."""
    return (_f("Syncer_Account_Score__c", "double", rw=True, precision=18, scale=2),
            _f("Syncer_Account_Grade__c", "string", 8, rw=True),
            _f("Syncer_Account_MQA__c", "string", 255, rw=True),
            _f("Syncer_Account_Reasons__c", "string", 255, rw=True))


#: The custom fields syncer adds to Lead and Contact, by name (blank on seeded rows).
SYNCER_FIELD_NAMES: tuple[str, ...] = tuple(spec.name for spec in _syncer_fields())
#: The custom fields syncer adds to Account, by name (blank on seeded rows).
SYNCER_ACCOUNT_FIELD_NAMES: tuple[str, ...] = tuple(
    spec.name for spec in _syncer_account_fields())


LEAD = ObjectSchema("Lead", "00Q", "Leads", (*LEAD_FIELDS, *_syncer_fields()),
                    createable=True)
CONTACT = ObjectSchema("Contact", "003", "Contacts", (*CONTACT_FIELDS, *_syncer_fields()),
                       createable=True)
ACCOUNT = ObjectSchema("Account", "001", "Accounts",
                       (*ACCOUNT_FIELDS, *_syncer_account_fields()), createable=True)

USER = ObjectSchema("User", "005", "Users", (
    _f("Id", "id", 18, required=True), _f("Username", "string", 80, required=True),
    _f("Email", "email", 128, required=True), _f("FirstName", "string", 40),
    _f("LastName", "string", 80, required=True), _f("Name", "string", 121, required=True),
    _f("IsActive", "boolean", required=True),
    _f("UserType", "picklist", 40, picklist=("Standard", "AutomatedProcess")),
    *_audit_fields()))

GROUP = ObjectSchema("Group", "00G", "Groups", (
    _f("Id", "id", 18, required=True), _f("Name", "string", 40, required=True),
    _f("DeveloperName", "string", 80), _f("Type", "picklist", 40, picklist=("Queue", "Regular")),
    _f("Email", "email", 255), *_audit_fields()))

CAMPAIGN = ObjectSchema("Campaign", "701", "Campaigns", (
    _f("Id", "id", 18, required=True), _f("IsDeleted", "boolean", required=True),
    _f("Name", "string", 80, rw=True, required=True),
    _f("Type", "picklist", 255, rw=True, picklist=CAMPAIGN_TYPES),
    _f("Status", "picklist", 255, rw=True,
       picklist=("Planned", "In Progress", "Completed", "Aborted")),
    _f("IsActive", "boolean", rw=True, required=True), _f("StartDate", "date", rw=True),
    _f("OwnerId", "reference", 18, rw=True, required=True, to=("User",), rel="Owner"),
    *_audit_fields()))

#: CampaignMember rows come from the world only: the sandbox takes no inserts of them.
CAMPAIGN_MEMBER = ObjectSchema("CampaignMember", "00v", "Campaign Members",
                               CAMPAIGN_MEMBER_FIELDS)
TASK = ObjectSchema("Task", "00T", "Tasks", TASK_FIELDS, createable=True)
#: Calendar events: the meetings reps log (a Who, a start, a duration, an owner).
EVENT = ObjectSchema("Event", "00U", "Events", EVENT_FIELDS, createable=True)
#: Deals; ContactId is the primary contact (what the sandbox's close_deal sets).
OPPORTUNITY = ObjectSchema("Opportunity", "006", "Opportunities", OPPORTUNITY_FIELDS,
                           createable=True)

SCHEMAS: dict[str, ObjectSchema] = {
    schema.name.lower(): schema
    for schema in (LEAD, CONTACT, ACCOUNT, USER, GROUP, CAMPAIGN, CAMPAIGN_MEMBER, TASK,
                   EVENT, OPPORTUNITY)}
BY_PREFIX: dict[str, ObjectSchema] = {schema.key_prefix: schema for schema in SCHEMAS.values()}


def schema_for(name: str) -> ObjectSchema | None:
    return SCHEMAS.get(name.lower())


def format_datetime(value: datetime) -> str:
    """Salesforce's wire format: millisecond precision, numeric UTC offset."""
    value = value.astimezone(timezone.utc)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


def to_json(spec: FieldSpec, value: object) -> object:
    """A stored value (rows.FieldValue) as the REST API renders it: datetimes as strings,
    doubles as floats, a checkbox never set as false; what json.dumps takes."""
    if value is None:
        return False if spec.type == "boolean" else None
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if spec.type in ("double", "currency", "percent") and isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def describe_field(spec: FieldSpec) -> dict[str, object]:
    return {
        "name": spec.name, "label": spec.label, "type": spec.type, "length": spec.length,
        "updateable": spec.updateable, "createable": spec.createable,
        "defaultedOnCreate": spec.defaulted, "nillable": spec.nillable,
        "custom": spec.custom, "calculated": False,
        "filterable": spec.filterable, "sortable": spec.filterable,
        "precision": spec.precision, "scale": spec.scale,
        "digits": spec.precision if spec.type == "int" else 0,
        "referenceTo": list(spec.reference_to), "relationshipName": spec.relationship_name,
        "restrictedPicklist": spec.restricted, "unique": spec.name == "Id",
        "externalId": False, "idLookup": spec.name == "Id",
        "picklistValues": [
            {"active": True, "defaultValue": value == spec.default, "label": value,
             "validFor": None, "value": value} for value in spec.picklist],
    }


def object_urls(schema: ObjectSchema, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{schema.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def describe_global_entry(schema: ObjectSchema, version: str) -> dict[str, object]:
    updateable = any(spec.updateable for spec in schema.fields)
    return {
        "name": schema.name, "label": schema.name, "labelPlural": schema.label_plural,
        "keyPrefix": schema.key_prefix, "custom": False, "queryable": True,
        "retrieveable": True, "searchable": True, "updateable": updateable,
        "createable": schema.createable, "deletable": updateable, "layoutable": True,
        "urls": object_urls(schema, version),
    }


def describe_object(schema: ObjectSchema, version: str,
                    present: Callable[[str], bool] = lambda name: True) -> dict[str, object]:
    """The describe of `schema`, with the fields `present` says the org has."""
    return {**describe_global_entry(schema, version),
            "fields": [describe_field(spec) for spec in schema.fields if present(spec.name)],
            "childRelationships": [], "recordTypeInfos": []}
