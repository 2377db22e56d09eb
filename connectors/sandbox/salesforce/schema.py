"""The sObject schemas the Salesforce sandbox serves, and how their values look on the wire.

One table of field definitions drives everything the emulator does with a field: describe
answers, SOQL type checks, JSON rendering and write validation. Keeping it in one place is
what keeps those four consistent with each other, as they are in a real org.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any

from connectors.sandbox.salesforce.field_spec import FieldSpec as FieldSpec
from connectors.sandbox.salesforce.field_spec import ObjectSchema as ObjectSchema
from connectors.sandbox.salesforce.field_spec import field_spec as _f

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



INDUSTRY_VALUES = (
    "Agriculture", "Banking", "Consulting", "Education", "Financial Services", "Government",
    "Healthcare", "Manufacturing", "Media", "Non-Profit", "Professional Services", "Retail",
    "Software", "Technology", "Telecommunications", "Other")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                 "Closed - Not Converted")
#: Salesforce's standard LeadSource values, then those the sandbox world adds
#: (sandbox_outcomes.SOURCES) and older sandbox ones.
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other",
                "Customer Referral", "Paid Search", "Social Media", "Email", "Trade Show",
                "Webinar", "Content")
SYNCER_STAGES = ("Subscriber", "Lead", "MQL", "SAL", "SQL", "Opportunity", "Customer")
CAMPAIGN_TYPES = ("Webinar", "Content", "Email", "Website", "Conference", "Advertisement",
                  "Other")
CAMPAIGN_MEMBER_STATUSES = ("Sent", "Registered", "Attended", "Responded", "Opened",
                            "Clicked", "Bounced", "Unsubscribed")
TASK_TYPES = ("Call", "Email", "Meeting", "Web Activity", "Other")


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


def _person_fields() -> tuple[FieldSpec, ...]:
    return (_f("Id", "id", 18, required=True), _f("IsDeleted", "boolean", required=True),
            _f("LastName", "string", 80, rw=True, required=True),
            _f("FirstName", "string", 40, rw=True), _f("Name", "string", 121, required=True),
            _f("Title", "string", 128, rw=True), _f("Email", "email", 80, rw=True),
            _f("LeadSource", "picklist", 255, rw=True, picklist=LEAD_SOURCES))


LEAD = ObjectSchema("Lead", "00Q", "Leads", (
    *_person_fields(),
    _f("Company", "string", 255, rw=True, required=True),
    _f("Industry", "picklist", 255, rw=True, picklist=INDUSTRY_VALUES),
    _f("NumberOfEmployees", "int", rw=True, precision=8),
    _f("Country", "string", 80, rw=True), _f("Address", "address"),
    _f("Status", "picklist", 255, rw=True, required=True, picklist=LEAD_STATUSES,
       default=LEAD_STATUSES[0]),
    _f("OwnerId", "reference", 18, rw=True, required=True, to=("Group", "User"), rel="Owner",
       defaulted=True),
    _f("IsConverted", "boolean", required=True), _f("ConvertedDate", "date"),
    _f("ConvertedContactId", "reference", 18, to=("Contact",), rel="ConvertedContact"),
    _f("ConvertedAccountId", "reference", 18, to=("Account",), rel="ConvertedAccount"),
    _f("MasterRecordId", "reference", 18, to=("Lead",), rel="MasterRecord"),
    *_audit_fields(), *_syncer_fields()), createable=True)

CONTACT = ObjectSchema("Contact", "003", "Contacts", (
    *_person_fields(),
    _f("AccountId", "reference", 18, rw=True, to=("Account",), rel="Account"),
    _f("MailingCountry", "string", 80, rw=True), _f("MailingAddress", "address"),
    _f("OwnerId", "reference", 18, rw=True, required=True, to=("User",), rel="Owner",
       defaulted=True),
    _f("MasterRecordId", "reference", 18, to=("Contact",), rel="MasterRecord"),
    *_audit_fields(), *_syncer_fields()), createable=True)

ACCOUNT = ObjectSchema("Account", "001", "Accounts", (
    _f("Id", "id", 18, required=True), _f("IsDeleted", "boolean", required=True),
    _f("Name", "string", 255, rw=True, required=True),
    _f("Industry", "picklist", 255, rw=True, picklist=INDUSTRY_VALUES),
    _f("NumberOfEmployees", "int", rw=True, precision=8),
    _f("BillingCountry", "string", 80, rw=True), _f("Website", "url", 255, rw=True),
    _f("AnnualRevenue", "currency", rw=True, precision=18, scale=0),
    _f("OwnerId", "reference", 18, rw=True, required=True, to=("User",), rel="Owner",
       defaulted=True),
    *_audit_fields(), *_syncer_account_fields()), createable=True)

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

CAMPAIGN_MEMBER = ObjectSchema("CampaignMember", "00v", "Campaign Members", (
    _f("Id", "id", 18, required=True), _f("IsDeleted", "boolean", required=True),
    _f("CampaignId", "reference", 18, required=True, to=("Campaign",), rel="Campaign"),
    _f("LeadId", "reference", 18, to=("Lead",), rel="Lead"),
    _f("ContactId", "reference", 18, to=("Contact",), rel="Contact"),
    _f("Status", "picklist", 40, rw=True, picklist=CAMPAIGN_MEMBER_STATUSES),
    _f("HasResponded", "boolean", required=True), _f("FirstRespondedDate", "date"),
    *_audit_fields()))

TASK = ObjectSchema("Task", "00T", "Tasks", (
    _f("Id", "id", 18, required=True), _f("IsDeleted", "boolean", required=True),
    _f("WhoId", "reference", 18, rw=True, to=("Contact", "Lead"), rel="Who"),
    _f("Subject", "combobox", 255, rw=True),
    _f("Type", "picklist", 255, rw=True, picklist=TASK_TYPES),
    replace(_f("TaskSubtype", "picklist", 40, picklist=("Task", "Email", "Call")),
            create=True),  # set on insert, read-only after
    _f("Status", "picklist", 40, rw=True, required=True,
       picklist=("Not Started", "In Progress", "Completed"), default="Not Started"),
    _f("Priority", "picklist", 40, rw=True, required=True, picklist=("High", "Normal", "Low"),
       default="Normal"),
    _f("ActivityDate", "date", rw=True), _f("Description", "textarea", 32000, rw=True),
    _f("CallDurationInSeconds", "int", rw=True),
    _f("OwnerId", "reference", 18, rw=True, required=True, to=("User",), rel="Owner",
       defaulted=True),
    *_audit_fields()), createable=True)

#: Calendar events: the meetings reps log (a Who, a start, a duration, an owner).
EVENT = ObjectSchema("Event", "00U", "Events", (
    _f("Id", "id", 18, required=True), _f("IsDeleted", "boolean", required=True),
    _f("WhoId", "reference", 18, rw=True, to=("Contact", "Lead"), rel="Who"),
    _f("Subject", "combobox", 255, rw=True),
    _f("Type", "picklist", 255, rw=True, picklist=("Call", "Email", "Meeting", "Other")),
    _f("ActivityDateTime", "datetime", rw=True, required=True),
    _f("DurationInMinutes", "int", rw=True), _f("Description", "textarea", 32000, rw=True),
    _f("OwnerId", "reference", 18, rw=True, required=True, to=("User",), rel="Owner",
       defaulted=True),
    *_audit_fields()), createable=True)

OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Needs Analysis",
                      "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
                      "Closed Lost")
#: Deals; ContactId is the primary contact (what the sandbox's close_deal sets).
OPPORTUNITY = ObjectSchema("Opportunity", "006", "Opportunities", (
    _f("Id", "id", 18, required=True), _f("IsDeleted", "boolean", required=True),
    _f("Name", "string", 120, rw=True, required=True),
    _f("StageName", "picklist", 255, rw=True, required=True, picklist=OPPORTUNITY_STAGES),
    _f("CloseDate", "date", rw=True, required=True),
    _f("Amount", "currency", rw=True, precision=18, scale=2),
    _f("IsClosed", "boolean", required=True), _f("IsWon", "boolean", required=True),
    _f("AccountId", "reference", 18, rw=True, to=("Account",), rel="Account"),
    _f("ContactId", "reference", 18, rw=True, to=("Contact",), rel="Contact"),
    _f("OwnerId", "reference", 18, rw=True, required=True, to=("User",), rel="Owner",
       defaulted=True),
    *_audit_fields()), createable=True)

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


def to_json(spec: FieldSpec, value: Any) -> Any:
    """A stored value as the REST API renders it (datetimes as strings, doubles as floats)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if spec.type in ("double", "currency", "percent"):
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
