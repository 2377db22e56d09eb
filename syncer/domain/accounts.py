"""Accounts: the companies people work for, as each CRM keeps them (issue 20, item 3).

A HubSpot company and a Salesforce Account are both read into an `Account`. Accounts of
different CRMs are the same company when their web domains match, else when one names the
other's id (HubSpot's `salesforceaccountid`, kept in `linked_ids`). A person's account is
the CRM's own link (`Person.account_id`: HubSpot's primary associated company, a Salesforce
Contact's AccountId), or for a person without one (a Salesforce Lead) the account whose
domain is the person's email domain.

The qualification core scores accounts from these values and the decisions of their
people (syncer/qualify/accounts.py); connectors only translate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from syncer.domain.types import PropertyValue, Reason


@dataclass(frozen=True, slots=True)
class Account:
    """One company record in one CRM (a HubSpot company, a Salesforce Account).

    `domain` is normalized by the connector: lower case, no scheme, no `www.`, no path
    (HubSpot `domain`, Salesforce `Website`). `owner_email` is the owning user's email
    where the connector knows it (routing sends an owned account's people to this rep).
    `crm_values` holds the current CRM values of the account fields syncer writes, keyed
    by CRM field name, so the pipeline can diff against what is there now. `properties`
    holds other mapped account fields by syncer's name (the model's account fit reads them
    as it reads the standard ones).
    """

    source: str
    record_id: str
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    annual_revenue: float | None = None
    owner_id: str | None = None
    owner_email: str | None = None
    updated_at: datetime | None = None
    #: ids of this company in other CRMs, by connector kind ("salesforce" -> "001...")
    linked_ids: Mapping[str, str] = field(default_factory=dict)
    crm_values: Mapping[str, str | None] = field(default_factory=dict)
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)


#: the object type a connector's RecordUpdate names to write to an account
#: (HubSpot "companies", Salesforce "Account"), kept here so the pipeline can tell
#: account updates from person updates without naming a CRM.
ACCOUNT_OBJECT_TYPES: frozenset[str] = frozenset({"companies", "Account"})
#: which of them each connector kind writes (the pipeline looks it up by the config's kind)
ACCOUNT_OBJECT_BY_KIND: dict[str, str] = {"hubspot": "companies", "salesforce": "Account"}


@dataclass(frozen=True, slots=True)
class AccountDecision:
    """What the core decided for one company (all its CRM records) under one model
    version: syncer/qualify/accounts.py makes it, the store keeps the latest per key, and
    the run writes score, grade, MQA and reasons to every CRM record of the company.

    `key` is "domain:<domain>", or "id:<connector>:<record id>" for a company without a
    domain. `score` == round(fit + engagement); the reasons' points add up to fit +
    engagement. `engaged_people` counts the people whose own engagement reached the
    model's `engaged_person_min`.
    """

    key: str
    score: int
    fit: float
    engagement: float
    grade: str
    is_mqa: bool
    engaged_people: int
    reasons: tuple[Reason, ...]
    model_version: str
    name: str | None = None
