"""The standard fields of Account and Opportunity, as the Object Reference documents them
for API 59.0: https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
object_reference/sforce_api_objects_account.htm (and _opportunity.htm).

Fields of optional features (person accounts, multiple currencies, territories, state and
country picklists) are left out, as a new org lacks them. An Opportunity's IsClosed, IsWon,
and (when a write leaves them out) Probability and ForecastCategoryName follow its
StageName, as the org's stage settings make them (field_rules.derive).
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
    ACCOUNT_TYPES,
    CLEAN_STATUSES,
    FORECAST_CATEGORIES,
    FORECAST_CATEGORY_NAMES,
    INDUSTRY_VALUES,
    LEAD_SOURCES,
    OPPORTUNITY_STAGES,
    OPPORTUNITY_TYPES,
    OWNERSHIP,
    RATINGS,
)

ACCOUNT_FIELDS: tuple[FieldSpec, ...] = (
    *system_fields("Account"),
    _f("Name", "string", 255, rw=True, required=True),
    _f("Type", "picklist", 255, rw=True, picklist=ACCOUNT_TYPES),
    reference("ParentId", "Account"),
    *address_fields("Billing"), *address_fields("Shipping"),
    phone("Phone"), phone("Fax"),
    _f("AccountNumber", "string", 40, rw=True),
    _f("Website", "url", 255, rw=True),
    _f("PhotoUrl", "url", 255),
    _f("Sic", "string", 20, rw=True),
    _f("Industry", "picklist", 255, rw=True, picklist=INDUSTRY_VALUES),
    _f("AnnualRevenue", "currency", rw=True, precision=18, scale=0),
    _f("NumberOfEmployees", "int", rw=True, precision=8),
    _f("Ownership", "picklist", 255, rw=True, picklist=OWNERSHIP),
    _f("TickerSymbol", "string", 20, rw=True),
    _f("Description", "textarea", 32000, rw=True),
    _f("Rating", "picklist", 255, rw=True, picklist=RATINGS),
    _f("Site", "string", 80, rw=True),
    reference("OwnerId", "User", required=True, defaulted=True),
    *viewed_fields(),
    _f("Jigsaw", "string", 20, rw=True),
    _f("JigsawCompanyId", "string", 20),
    _f("CleanStatus", "picklist", 40, rw=True, picklist=CLEAN_STATUSES, restricted=True),
    _f("AccountSource", "picklist", 255, rw=True, picklist=LEAD_SOURCES),
    _f("DunsNumber", "string", 9, rw=True),
    _f("Tradestyle", "string", 255, rw=True),
    _f("NaicsCode", "string", 8, rw=True),
    _f("NaicsDesc", "string", 120, rw=True),
    _f("YearStarted", "string", 4, rw=True),
    _f("SicDesc", "string", 80, rw=True),
    reference("DandbCompanyId", "DandBCompany"))

OPPORTUNITY_FIELDS: tuple[FieldSpec, ...] = (
    *system_fields(),
    reference("AccountId", "Account"),
    checkbox("IsPrivate"),
    _f("Name", "string", 120, rw=True, required=True),
    _f("Description", "textarea", 32000, rw=True),
    _f("StageName", "picklist", 255, rw=True, required=True, picklist=OPPORTUNITY_STAGES),
    _f("Amount", "currency", rw=True, precision=18, scale=2),
    _f("Probability", "percent", rw=True, precision=3, scale=0),
    _f("ExpectedRevenue", "currency", precision=18, scale=2),
    _f("TotalOpportunityQuantity", "double", rw=True, precision=18, scale=2),
    _f("CloseDate", "date", rw=True, required=True),
    _f("Type", "picklist", 255, rw=True, picklist=OPPORTUNITY_TYPES),
    _f("NextStep", "string", 255, rw=True),
    _f("LeadSource", "picklist", 255, rw=True, picklist=LEAD_SOURCES),
    checkbox("IsClosed", rw=False), checkbox("IsWon", rw=False),
    _f("ForecastCategory", "picklist", 40, picklist=FORECAST_CATEGORIES, restricted=True),
    _f("ForecastCategoryName", "picklist", 255, rw=True, picklist=FORECAST_CATEGORY_NAMES,
       defaulted=True),
    reference("CampaignId", "Campaign"),
    checkbox("HasOpportunityLineItem", rw=False),
    reference("Pricebook2Id", "Pricebook2"),
    reference("OwnerId", "User", required=True, defaulted=True),
    *viewed_fields(),
    _f("FiscalQuarter", "int", precision=11), _f("FiscalYear", "int", precision=11),
    _f("Fiscal", "string", 6),
    reference("ContactId", "Contact"),
    checkbox("HasOpenActivity", rw=False), checkbox("HasOverdueTask", rw=False),
    _f("PushCount", "int", precision=9),
    _f("LastStageChangeDate", "datetime"))
