"""What the sandbox portal's companies and deals look like: their properties, as HubSpot
describes them (`GET /crm/v3/properties/companies`, `.../deals`).

One table per object type, in the shape of the contacts' (schema.py), so the same code
validates writes (validation.py), answers the property list (properties.py) and decides
how a search filter compares values (search.py). Names, types and read-only flags follow
HubSpot's default properties; the sandbox keeps the ones syncer and common integrations
read, not HubSpot's hundreds.
"""

from __future__ import annotations

from connectors.sandbox.hubspot.schema import LIFECYCLE_STAGES, PropertyDef


def _text(name: str, label: str, group: str, description: str = "") -> PropertyDef:
    return PropertyDef(name, label, "string", "text", group, description)


def _number(name: str, label: str, group: str, description: str = "") -> PropertyDef:
    return PropertyDef(name, label, "number", "number", group, description)


def _stamps(group: str, what: str) -> tuple[PropertyDef, ...]:
    """The record id and create/modify stamps HubSpot keeps on every object (read-only)."""
    return (
        PropertyDef("hs_object_id", "Record ID", "number", "number", group,
                    "The unique ID for this record. This value is set automatically by "
                    "HubSpot.", read_only=True),
        PropertyDef("createdate", "Create Date", "datetime", "date", group,
                    f"The date the {what} was created", read_only=True),
        PropertyDef("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group,
                    f"Most recent timestamp of any property update for this {what}",
                    read_only=True),
    )


COMPANY_PROPERTIES: tuple[PropertyDef, ...] = (
    _text("name", "Company name", "companyinformation", "The name of the company"),
    _text("domain", "Company Domain Name", "companyinformation",
          "The domain name of the company"),
    _text("website", "Website URL", "companyinformation", "The main website of the company"),
    # HubSpot's industry is an enumeration of ~150 codes; the sandbox keeps it text so a
    # world's industry names round-trip as written.
    _text("industry", "Industry", "companyinformation", "The type of business the company "
          "performs"),
    _number("numberofemployees", "Number of Employees", "companyinformation",
            "The total number of employees who work for the company"),
    _number("annualrevenue", "Annual Revenue", "companyinformation",
            "The actual or estimated annual revenue of the company"),
    _text("country", "Country/Region", "companyinformation", "The company's country/region"),
    _text("city", "City", "companyinformation", "The city where the company is located"),
    _text("phone", "Phone Number", "companyinformation", "The company's primary phone"),
    _text("description", "Description", "companyinformation", "A short statement about "
          "the company's mission and goals"),
    PropertyDef("lifecyclestage", "Lifecycle Stage", "enumeration", "radio",
                "companyinformation", "The qualification of companies to sales readiness",
                options=LIFECYCLE_STAGES),
    PropertyDef("hubspot_owner_id", "Company owner", "enumeration", "select",
                "companyinformation", "The owner of the company", owner_options=True),
    _text("salesforceaccountid", "Salesforce Account ID", "salesforceinformation",
          "The Account ID of this company in Salesforce (set by the Salesforce "
          "integration)"),
    *_stamps("companyinformation", "company"),
)
COMPANY_GROUPS: tuple[tuple[str, str], ...] = (
    ("companyinformation", "Company information"),
    ("salesforceinformation", "Salesforce information"))
#: returned on every company even when the caller names others / when it names none
COMPANY_ALWAYS: tuple[str, ...] = ("createdate", "hs_lastmodifieddate", "hs_object_id")
COMPANY_DEFAULT: tuple[str, ...] = ("createdate", "domain", "hs_lastmodifieddate",
                                    "hs_object_id", "name")
#: the properties a search's free-text `query` looks in (HubSpot: name, domain, phone...)
COMPANY_QUERY: tuple[str, ...] = ("name", "domain", "website", "phone", "hs_object_id")

#: HubSpot's default sales pipeline's stages (internal value, label), in order.
DEAL_STAGES: tuple[tuple[str, str], ...] = (
    ("appointmentscheduled", "Appointment Scheduled"), ("qualifiedtobuy", "Qualified To Buy"),
    ("presentationscheduled", "Presentation Scheduled"),
    ("decisionmakerboughtin", "Decision Maker Bought-In"),
    ("contractsent", "Contract Sent"), ("closedwon", "Closed Won"),
    ("closedlost", "Closed Lost"))
WON_STAGE, LOST_STAGE = "closedwon", "closedlost"

DEAL_PROPERTIES: tuple[PropertyDef, ...] = (
    _text("dealname", "Deal Name", "dealinformation", "The name given to this deal"),
    _number("amount", "Amount", "dealinformation", "The total amount of the deal"),
    PropertyDef("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation",
                "The stage of the deal", options=DEAL_STAGES),
    PropertyDef("pipeline", "Pipeline", "enumeration", "select", "dealinformation",
                "The pipeline the deal is in", options=(("default", "Sales Pipeline"),)),
    PropertyDef("closedate", "Close Date", "datetime", "date", "dealinformation",
                "Date the deal was closed"),
    PropertyDef("hubspot_owner_id", "Deal owner", "enumeration", "select", "dealinformation",
                "The owner of the deal", owner_options=True),
    # calculated by HubSpot from the stage's probability: never written by a client
    PropertyDef("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox",
                "dealinformation", "True if the deal is in a closed won stage",
                options=(("true", "True"), ("false", "False")), read_only=True),
    PropertyDef("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox",
                "dealinformation", "True if the deal is won or lost",
                options=(("true", "True"), ("false", "False")), read_only=True),
    *_stamps("dealinformation", "deal"),
)
DEAL_GROUPS: tuple[tuple[str, str], ...] = (("dealinformation", "Deal information"),)
DEAL_ALWAYS: tuple[str, ...] = COMPANY_ALWAYS
DEAL_DEFAULT: tuple[str, ...] = ("amount", "closedate", "createdate", "dealname",
                                 "dealstage", "hs_lastmodifieddate", "hs_object_id",
                                 "pipeline")
DEAL_QUERY: tuple[str, ...] = ("dealname", "hs_object_id")
