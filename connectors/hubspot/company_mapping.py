"""How HubSpot companies translate into syncer's `Account` (issue 20, item 3).

Plain functions over plain values, like mapping.py for contacts: which company properties
are read, how a `domain` is normalized so a HubSpot company and a Salesforce Account of
one firm match, and where the Salesforce id the HubSpot-Salesforce integration stores
(`salesforceaccountid`) goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connectors.hubspot.answers import CrmObject
from connectors.hubspot.mapping import parse_timestamp
from syncer.domain.accounts import Account

#: the object type a RecordUpdate names to write to a company (ACCOUNT_OBJECT_TYPES)
COMPANY_OBJECT = "companies"
#: the company modification stamp an incremental pull searches on
COMPANY_STAMP = "hs_lastmodifieddate"
#: the Salesforce Account id the HubSpot-Salesforce integration keeps on a company
SALESFORCE_ID = "salesforceaccountid"
#: Company properties an Account is built from (read on every pull).
COMPANY_PROPERTIES: tuple[str, ...] = (
    "name", "domain", "industry", "numberofemployees", "country", "annualrevenue",
    "hubspot_owner_id", COMPANY_STAMP, SALESFORCE_ID)


def normalized_domain(value: str | None) -> str | None:
    """A web domain as accounts are matched on: lower case, no scheme, no `www.`, no
    port, path, query or trailing dot ("https://WWW.Acme.com/about" -> "acme.com");
    None when nothing is left."""
    text = (value or "").strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.lstrip("/")
    for cut in ("/", "?", "#", ":"):
        text = text.split(cut, 1)[0]
    text = text.removeprefix("www.").strip(".")
    return text or None


def _text(properties: Mapping[str, str | None], name: str) -> str | None:
    value = properties.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _number(properties: Mapping[str, str | None], name: str) -> float | None:
    """A number property's value (HubSpot sends numbers as text); None when unset or
    not a number."""
    text = _text(properties, name)
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def to_account(source: str, company: CrmObject, writeback_fields: Sequence[str],
               owner_emails: Mapping[str, str]) -> Account:
    """One company (as answers.crm_object read it) as a domain Account. `owner_emails`
    (owner id -> email, from the owners list the connector read) names the owner's email;
    `crm_values` holds the account write-back fields as they are. The modification time
    is the company's `hs_lastmodifieddate`, else the answer's `updatedAt`."""
    properties = company["properties"]
    employees = _number(properties, "numberofemployees")
    owner_id = _text(properties, "hubspot_owner_id")
    salesforce_id = _text(properties, SALESFORCE_ID)
    modified = (parse_timestamp(properties.get(COMPANY_STAMP))
                or parse_timestamp(company.get("updatedAt")))
    return Account(
        source=source, record_id=company["id"], name=_text(properties, "name"),
        domain=normalized_domain(properties.get("domain")),
        industry=_text(properties, "industry"),
        employees=int(employees) if employees is not None else None,
        country=_text(properties, "country"),
        annual_revenue=_number(properties, "annualrevenue"),
        owner_id=owner_id, owner_email=owner_emails.get(owner_id) if owner_id else None,
        updated_at=modified,
        linked_ids={"salesforce": salesforce_id} if salesforce_id else {},
        crm_values={name: properties.get(name) for name in writeback_fields})
