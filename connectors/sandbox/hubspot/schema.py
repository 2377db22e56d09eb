"""What the HubSpot sandbox's portal looks like: contact properties and event types.

HubSpot describes every contact property (`GET /crm/v3/properties/contacts`) and clients such
as target checks and our own connector rely on that description to know what can be written.
Keeping the definitions in one table lets the sandbox validate writes, answer the property
list and decide how a filter compares values, all from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.sandbox.outcomes import HUBSPOT_SOURCES
from syncer.domain.json_values import JSONValue

#: HubSpot's standard ranges for the contact `numemployees` enumeration, in order.
NUMEMPLOYEES_RANGES: tuple[str, ...] = (
    "1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000-5000", "5000-10000",
    "10000+",
)

#: HubSpot's default lifecycle stages (internal value, label), in funnel order.
LIFECYCLE_STAGES: tuple[tuple[str, str], ...] = (
    ("subscriber", "Subscriber"), ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"),
    ("customer", "Customer"), ("evangelist", "Evangelist"), ("other", "Other"),
)

#: Properties HubSpot returns on every record even when the caller names others.
ALWAYS_RETURNED: tuple[str, ...] = ("createdate", "hs_object_id", "lastmodifieddate")
#: Properties HubSpot returns when the caller names none.
DEFAULT_RETURNED: tuple[str, ...] = ("createdate", "email", "firstname", "hs_object_id",
                                     "lastmodifieddate", "lastname")


#: hs_analytics_source / hs_latest_source options (internal value, label).
_ANALYTICS_SOURCES: tuple[tuple[str, str], ...] = tuple(
    (value, value.replace("_", " ").title()) for value in HUBSPOT_SOURCES)


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One contact property as HubSpot describes it.

    `type` decides how the sandbox validates writes and compares search filters:
    string, number, datetime or enumeration (values restricted to `options`).
    """

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()
    read_only: bool = False
    hubspot_defined: bool = True
    #: options come from the owners list at request time (hubspot_owner_id).
    owner_options: bool = False
    #: more describe fields, as JSON (none of the sandbox's own properties has any)
    extra: dict[str, JSONValue] = field(default_factory=dict)


def _text(name: str, label: str, group: str = "contactinformation",
          description: str = "") -> PropertyDef:
    return PropertyDef(name, label, "string", "text", group, description)


def _number(name: str, label: str, description: str) -> PropertyDef:
    """A custom number property in syncer's group (HubSpot keeps decimals as written)."""
    return PropertyDef(name, label, "number", "number", "syncer", description,
                       hubspot_defined=False)


CONTACT_PROPERTIES: tuple[PropertyDef, ...] = (
    _text("email", "Email", description="A contact's email address"),
    _text("firstname", "First Name", description="A contact's first name"),
    _text("lastname", "Last Name", description="A contact's last name"),
    _text("jobtitle", "Job Title", description="A contact's job title"),
    _text("company", "Company Name", description="Name of the contact's company"),
    _text("industry", "Industry", description="The industry a contact is in"),
    PropertyDef("numemployees", "Number of Employees", "enumeration", "select",
                "contactinformation", "The number of company employees",
                options=tuple((value, value) for value in NUMEMPLOYEES_RANGES)),
    _text("country", "Country/Region", description="The contact's country/region"),
    PropertyDef("lifecyclestage", "Lifecycle Stage", "enumeration", "radio",
                "contactinformation",
                "The qualification of contacts to sales readiness",
                options=LIFECYCLE_STAGES),
    PropertyDef("hubspot_owner_id", "Contact owner", "enumeration", "select",
                "sales_properties", "The owner of a contact", owner_options=True),
    # the contact's primary company (associations.py keeps it and the association in step)
    PropertyDef("associatedcompanyid", "Primary Associated Company ID", "number", "number",
                "contactinformation", "The id of the contact's primary company"),
    PropertyDef("hs_object_id", "Record ID", "number", "number", "contactinformation",
                "The unique ID for this record. This value is set automatically by HubSpot.",
                read_only=True),
    PropertyDef("createdate", "Create Date", "datetime", "date", "contactinformation",
                "The date that a contact entered the system", read_only=True),
    PropertyDef("lastmodifieddate", "Last Modified Date", "datetime", "date",
                "contactinformation", "Most recent timestamp of any property update",
                read_only=True),
    PropertyDef("hs_merged_object_ids", "Merged Contact IDs", "enumeration", "checkbox",
                "contactinformation",
                "The list of Contact record IDs that have been merged into this Contact. "
                "This value is set automatically by HubSpot.", read_only=True),
    # Analytics HubSpot computes itself (read-only): where a contact came from and how
    # much of the website they saw. syncer maps them as person fields out of the box.
    PropertyDef("hs_analytics_source", "Original Source", "enumeration", "select",
                "analyticsinformation", "First known source the contact used to find you",
                options=_ANALYTICS_SOURCES, read_only=True),
    PropertyDef("hs_latest_source", "Latest Traffic Source", "enumeration", "select",
                "analyticsinformation", "The source of the contact's latest session",
                options=_ANALYTICS_SOURCES, read_only=True),
    PropertyDef("hs_analytics_num_visits", "Number of Sessions", "number", "number",
                "analyticsinformation", "The number of times a contact has come to your "
                "website", read_only=True),
    PropertyDef("hs_analytics_num_page_views", "Number of Pageviews", "number", "number",
                "analyticsinformation", "The number of page views a contact has had on "
                "your website", read_only=True),
    PropertyDef("hs_lifecyclestage_opportunity_date", "Became an Opportunity Date",
                "datetime", "date", "contactinformation",
                "The date and time when the contact entered the 'Opportunity' stage",
                read_only=True),
    PropertyDef("hs_lifecyclestage_customer_date", "Became a Customer Date", "datetime",
                "date", "contactinformation",
                "The date and time when the contact entered the 'Customer' stage",
                read_only=True),
    PropertyDef("syncer_score", "Syncer score", "number", "number", "syncer",
                "Lead score written by syncer", hubspot_defined=False),
    PropertyDef("syncer_fit_grade", "Syncer fit grade", "string", "text", "syncer",
                "Fit grade written by syncer", hubspot_defined=False),
    PropertyDef("syncer_reasons", "Syncer reasons", "string", "textarea", "syncer",
                "Why syncer scored the contact as it did", hubspot_defined=False),
    PropertyDef("syncer_owner_reason", "Syncer owner reason", "string", "text", "syncer",
                "Which routing rule chose the owner, and why", hubspot_defined=False),
    # Named scores (the model's `scores:`; config `fields.scores`): the primary score's
    # parts, and the example model's second product line, lead_routing.
    _number("syncer_fit", "Syncer fit", "Fit points of the primary score"),
    _number("syncer_engagement", "Syncer engagement",
            "Engagement points of the primary score"),
    _number("syncer_lead_routing_score", "Syncer lead routing score",
            "Lead routing score (fit + engagement, rounded) written by syncer"),
    _number("syncer_lead_routing_fit", "Syncer lead routing fit",
            "Fit points of the lead routing score"),
    _number("syncer_lead_routing_engagement", "Syncer lead routing engagement",
            "Engagement points of the lead routing score"),
    PropertyDef("syncer_lead_routing_grade", "Syncer lead routing grade", "string", "text",
                "syncer", "Fit grade of the lead routing score", hubspot_defined=False),
)

PROPERTY_BY_NAME: dict[str, PropertyDef] = {p.name: p for p in CONTACT_PROPERTIES}
#: Contact property groups (name, label): HubSpot's default ones the properties above use,
#: and syncer's (created by `syncer setup` in a real portal).
PROPERTY_GROUPS: tuple[tuple[str, str], ...] = (
    ("contactinformation", "Contact information"), ("sales_properties", "Sales properties"),
    ("analyticsinformation", "Web analytics history"), ("syncer", "Syncer"))
#: The custom properties a syncer install adds (group "syncer"); unset on seeded contacts.
SYNCER_PROPERTY_NAMES: tuple[str, ...] = tuple(
    p.name for p in CONTACT_PROPERTIES if not p.hubspot_defined)


def numemployees_range(employees: int) -> str:
    """The HubSpot range a head count falls in: the last range whose lower bound it reaches."""
    chosen = NUMEMPLOYEES_RANGES[0]
    for value in NUMEMPLOYEES_RANGES:
        lower = int(value.rstrip("+").split("-")[0])
        if employees >= lower:
            chosen = value
    return chosen


# -- Events API --------------------------------------------------------------------------
# Standard HubSpot event type names. `e_visited_page`, `e_submitted_form`,
# `e_registered_marketing_event` and `e_attended_marketing_event` are names seen in real
# integrations; the marketing email ones are plausible stand-ins (HubSpot serves real
# marketing email events from its separate email events API).
EVENT_VISITED_PAGE = "e_visited_page"
EVENT_SUBMITTED_FORM = "e_submitted_form"
EVENT_REGISTERED_MARKETING_EVENT = "e_registered_marketing_event"
EVENT_ATTENDED_MARKETING_EVENT = "e_attended_marketing_event"
EVENT_OPENED_EMAIL = "e_opened_email"
EVENT_CLICKED_EMAIL = "e_clicked_email"
EVENT_BOUNCED_EMAIL = "e_bounced_email"
EVENT_UNSUBSCRIBED_EMAIL = "e_unsubscribed_email"

EVENT_TYPES: tuple[str, ...] = (
    EVENT_VISITED_PAGE, EVENT_SUBMITTED_FORM, EVENT_REGISTERED_MARKETING_EVENT,
    EVENT_ATTENDED_MARKETING_EVENT, EVENT_OPENED_EMAIL, EVENT_CLICKED_EMAIL,
    EVENT_BOUNCED_EMAIL, EVENT_UNSUBSCRIBED_EMAIL,
)

#: Titles of the pages the world's visitors see (hs_page_title of e_visited_page).
PAGE_TITLES: dict[str, str] = {
    "/": "Home", "/pricing": "Pricing", "/product": "Product", "/customers": "Customers",
    "/integrations": "Integrations", "/careers": "Careers", "/docs": "Documentation",
    "/blog/lead-scoring": "Lead scoring that sales trusts",
    "/blog/routing": "Routing leads in minutes",
}
