"""The standard fields of Lead and Contact, as the Object Reference documents them for API
59.0 (names, types, lengths, create/update/nillable, standard picklists, reference targets
and relationship names): https://developer.salesforce.com/docs/atlas.en-us.object_reference
.meta/object_reference/sforce_api_objects_lead.htm (and _contact.htm).

Fields of optional features an org must turn on (person accounts, multiple currencies,
state and country picklists, High Velocity Sales, Einstein) are left out, as a new org
lacks them. Every field listed is queryable; one a record never set reads null (a
checkbox: false). syncer's custom fields are added by schema.py.
"""

from __future__ import annotations

from connectors.sandbox.salesforce.field_spec import (
    FieldSpec,
    address_fields,
    checkbox,
    phone,
    reference,
    system_fields,
    viewed_fields,
)
from connectors.sandbox.salesforce.field_spec import field_spec as _f
from connectors.sandbox.salesforce.picklists import (
    CLEAN_STATUSES,
    INDUSTRY_VALUES,
    LEAD_SOURCES,
    LEAD_STATUSES,
    RATINGS,
    SALUTATIONS,
)


def _name_fields() -> tuple[FieldSpec, ...]:
    """A person's name: LastName is required, Name (read-only) joins the parts."""
    return (_f("LastName", "string", 80, rw=True, required=True),
            _f("FirstName", "string", 40, rw=True),
            _f("MiddleName", "string", 40, rw=True), _f("Suffix", "string", 40, rw=True),
            _f("Salutation", "picklist", 40, rw=True, picklist=SALUTATIONS),
            _f("Name", "string", 121, required=True))


def _reachability() -> tuple[FieldSpec, ...]:
    """Email, opt-outs and the bounce a person's record carries (Lead and Contact)."""
    return (_f("Email", "email", 80, rw=True), checkbox("HasOptedOutOfEmail"),
            checkbox("HasOptedOutOfFax"), checkbox("DoNotCall"),
            _f("EmailBouncedReason", "string", 255, rw=True),
            _f("EmailBouncedDate", "datetime", rw=True),
            reference("IndividualId", "Individual"),
            _f("Jigsaw", "string", 20, rw=True),
            _f("CleanStatus", "picklist", 40, rw=True, picklist=CLEAN_STATUSES,
               restricted=True),
            _f("PhotoUrl", "url", 255),
            _f("Title", "string", 128, rw=True),
            _f("LeadSource", "picklist", 255, rw=True, picklist=LEAD_SOURCES),
            _f("Description", "textarea", 32000, rw=True),
            phone("Phone"), phone("MobilePhone"), phone("Fax"))


LEAD_FIELDS: tuple[FieldSpec, ...] = (
    *system_fields("Lead"), *_name_fields(), *_reachability(),
    _f("Company", "string", 255, rw=True, required=True),
    *address_fields(""),
    _f("Website", "url", 255, rw=True),
    _f("Status", "picklist", 255, rw=True, required=True, picklist=LEAD_STATUSES,
       default=LEAD_STATUSES[0]),
    _f("Industry", "picklist", 255, rw=True, picklist=INDUSTRY_VALUES),
    _f("Rating", "picklist", 255, rw=True, picklist=RATINGS),
    _f("AnnualRevenue", "currency", rw=True, precision=18, scale=0),
    _f("NumberOfEmployees", "int", rw=True, precision=8),
    reference("OwnerId", "Group", "User", required=True, defaulted=True),
    checkbox("IsConverted", rw=False),
    _f("ConvertedDate", "date"),
    reference("ConvertedAccountId", "Account", rw=False),
    reference("ConvertedContactId", "Contact", rw=False),
    reference("ConvertedOpportunityId", "Opportunity", rw=False),
    checkbox("IsUnreadByOwner"),
    *viewed_fields(), _f("LastTransferDate", "date"),
    _f("JigsawContactId", "string", 20),
    _f("CompanyDunsNumber", "string", 9, rw=True),
    reference("DandbCompanyId", "DandBCompany"))

CONTACT_FIELDS: tuple[FieldSpec, ...] = (
    *system_fields("Contact"), *_name_fields(), *_reachability(),
    reference("AccountId", "Account"),
    *address_fields("Mailing"), *address_fields("Other"),
    phone("HomePhone"), phone("OtherPhone"), phone("AssistantPhone"),
    _f("AssistantName", "string", 40, rw=True),
    _f("Department", "string", 80, rw=True),
    reference("ReportsToId", "Contact"),
    _f("Birthdate", "date", rw=True),
    reference("OwnerId", "User", required=True, defaulted=True),
    checkbox("IsEmailBounced", rw=False),
    *viewed_fields(),
    _f("LastCURequestDate", "datetime"), _f("LastCUUpdateDate", "datetime"),
    _f("JigsawContactId", "string", 20))
