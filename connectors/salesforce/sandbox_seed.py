"""How the synthetic World looks inside a Salesforce org.

People in Salesforce become Leads (00Q) or Contacts (003, each under one Account per
company); reps become Users (005); every salesforce-channel activity becomes exactly one
row whose CreatedDate is the moment it happened:

- webinars, content downloads, marketing emails and website forms are CampaignMember rows
  (00v) of a Campaign (701) whose Type says the channel ("Webinar", "Content", "Email",
  "Website") and whose member Status says what the person did (Registered / Attended,
  Responded, Opened / Clicked / Bounced / Unsubscribed). Real orgs allow one member row per
  campaign and person; the sandbox keeps one row per activity instead, so repeated opens of
  the same newsletter stay countable.
- page views are Tasks (00T) of Type "Web Activity", Subject "Visited page: <url>", as
  website-tracking integrations log them.

Ownership looks like a real org: Leads sit in the "Unassigned Leads" queue (00G) and
Contacts with the integration user until routed; about one in ten records already has a
rep, and about one in twenty is already in a sales-owned stage. About a fifth of Contacts
came from a converted Lead, which stays behind with IsConverted = true (locked for writes).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from connectors.salesforce.sandbox_org import SalesforceOrg
from connectors.salesforce.sandbox_schema import (
    ACCOUNT,
    CAMPAIGN,
    CAMPAIGN_MEMBER,
    CONTACT,
    GROUP,
    LEAD,
    TASK,
    USER,
    make_id,
)
from connectors.sandbox_world import World, WorldActivity, WorldPerson
from syncer.domain import ActivityType

INTEGRATION_EMAIL = "integration@syncer-sandbox.test"
QUEUE_NAME = "Unassigned Leads"
#: the share of records already owned by a rep, and already in a sales-owned stage.
REP_OWNED_SHARE = 0.10
SALES_STAGE_SHARE = 0.05
CONVERTED_LEAD_SHARE = 0.20

_EMAIL_STATUSES = {ActivityType.EMAIL_OPEN: "Opened", ActivityType.EMAIL_CLICK: "Clicked",
                   ActivityType.EMAIL_BOUNCE: "Bounced",
                   ActivityType.UNSUBSCRIBE: "Unsubscribed"}
_WEBSITE_FORMS = (ActivityType.FORM_FILL, ActivityType.NEWSLETTER_SIGNUP,
                  ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES,
                  ActivityType.PRICING_REQUEST)
_RESPONDED = frozenset({"Registered", "Attended", "Responded", "Clicked"})


def campaign_membership(activity: WorldActivity) -> tuple[str, str, str] | None:
    """(Campaign.Type, Campaign.Name, member Status) for a campaign activity, else None."""
    kind, detail = activity.type, activity.detail
    if kind is ActivityType.WEBINAR_REGISTRATION:
        return "Webinar", detail.get("campaign", "Webinar"), "Registered"
    if kind is ActivityType.WEBINAR_ATTENDANCE:
        return "Webinar", detail.get("campaign", "Webinar"), "Attended"
    if kind is ActivityType.CONTENT_DOWNLOAD:
        return "Content", detail.get("asset", "Content"), "Responded"
    if kind in _EMAIL_STATUSES:
        return "Email", detail.get("email", "Email"), _EMAIL_STATUSES[kind]
    if kind in _WEBSITE_FORMS:
        return "Website", detail.get("form", "Website form"), "Responded"
    return None


def task_fields(activity: WorldActivity) -> tuple[str, str]:
    """(Task.Type, Task.Subject) for an activity that is not a campaign membership."""
    if activity.type in (ActivityType.PAGE_VIEW, ActivityType.PRICING_PAGE_VIEW):
        return "Web Activity", f"Visited page: {activity.detail.get('url', '')}"
    if activity.type is ActivityType.MEETING:
        return "Meeting", "Meeting"
    return "Other", activity.type.value


class OrgSeeder:
    """Fills a SalesforceOrg from a World, deterministically for a given seed."""

    def __init__(self, world: World, org: SalesforceOrg) -> None:
        self.world = world
        self.org = org
        self.setup_time = world.now - timedelta(days=900)
        self.counters: dict[str, int] = {}
        self.accounts: dict[tuple[str, str, int], str] = {}
        self.campaigns: dict[tuple[str, str], str] = {}
        self.integration_user = ""
        self.queue = ""
        self.reps: list[str] = []
        self.active_reps: list[str] = []

    def _next_id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return make_id(prefix, self.counters[prefix])

    def _stamps(self, created: datetime, modified: datetime | None = None) -> dict[str, Any]:
        return {"CreatedDate": created, "LastModifiedDate": modified or created,
                "SystemModstamp": modified or created, "IsDeleted": False}

    def seed(self) -> None:
        self._users()
        for person in self.world.people():
            if person.in_salesforce:
                self._person(person)

    def _users(self) -> None:
        self.integration_user = self._next_id("005")
        self.org.insert(USER, {
            "Id": self.integration_user, "Username": INTEGRATION_EMAIL,
            "Email": INTEGRATION_EMAIL, "FirstName": "Syncer", "LastName": "Integration",
            "IsActive": True, "UserType": "Standard", **self._stamps(self.setup_time)})
        for user in self.world.users:
            user_id = self._next_id("005")
            self.org.insert(USER, {
                "Id": user_id, "Username": user.email, "Email": user.email,
                "FirstName": user.first_name, "LastName": user.last_name,
                "IsActive": user.active, "UserType": "Standard",
                **self._stamps(self.setup_time)})
            self.reps.append(user_id)
            if user.active:
                self.active_reps.append(user_id)
        self.queue = self._next_id("00G")
        self.org.insert(GROUP, {"Id": self.queue, "Name": QUEUE_NAME,
                                "DeveloperName": QUEUE_NAME.replace(" ", "_"),
                                "Type": "Queue", "Email": None,
                                **self._stamps(self.setup_time)})

    def _ownership(self, rng: random.Random, default_owner: str) -> tuple[str, str | None]:
        """(OwnerId, Syncer_Stage__c): sales-owned stages always come with an active rep."""
        roll = rng.random()
        if roll < SALES_STAGE_SHARE and self.active_reps:
            return rng.choice(self.active_reps), rng.choice(("SQL", "Opportunity", "Customer"))
        if roll < REP_OWNED_SHARE and self.reps:
            return rng.choice(self.reps), None
        return default_owner, None

    def _modified(self, rng: random.Random, created: datetime) -> datetime:
        span = max(0.0, (self.world.now - created).total_seconds())
        return created + timedelta(seconds=int(span * rng.random()))

    def _person(self, person: WorldPerson) -> None:
        rng = random.Random(f"salesforce:{self.world.seed}:{person.index}")
        common = {
            "FirstName": person.first_name or None, "LastName": person.last_name,
            "Title": person.title or None, "Email": person.email,
            "LeadSource": rng.choice(("Web", "Webinar", "Content", "Other")),
            "Syncer_Score__c": None, "Syncer_Fit_Grade__c": None, "Syncer_Reasons__c": None,
            **self._stamps(person.created_at, self._modified(rng, person.created_at)),
        }
        if person.salesforce_object == "Contact":
            owner, stage = self._ownership(rng, self.integration_user)
            record_id = make_id("003", person.index + 1)
            account_id = self._account(person, owner)
            self.org.insert(CONTACT, {
                **common, "Id": record_id, "AccountId": account_id,
                "MailingCountry": person.country or None, "OwnerId": owner,
                "Syncer_Stage__c": stage})
            lead_id = None
            if rng.random() < CONVERTED_LEAD_SHARE:
                lead_id = self._converted_lead(person, common, record_id, account_id)
            member = {"LeadId": lead_id, "ContactId": record_id}
        else:
            owner, stage = self._ownership(rng, self.queue)
            record_id = make_id("00Q", person.index + 1)
            self.org.insert(LEAD, {
                **common, "Id": record_id, "Company": person.company,
                "Industry": person.industry or None, "NumberOfEmployees": person.employees,
                "Country": person.country or None, "OwnerId": owner,
                "Status": "Working - Contacted" if stage else "Open - Not Contacted",
                "IsConverted": False, "ConvertedDate": None, "ConvertedContactId": None,
                "ConvertedAccountId": None, "Syncer_Stage__c": stage})
            member = {"LeadId": record_id, "ContactId": None}
        task_owner = owner if owner.startswith("005") else self.integration_user
        for activity in self._salesforce_activities(person):
            self._activity(activity, member, record_id, task_owner)

    def _salesforce_activities(self, person: WorldPerson) -> Iterator[WorldActivity]:
        return (a for a in person.activities if a.channel == "salesforce")

    def _account(self, person: WorldPerson, owner: str) -> str:
        key = (person.company, person.industry, person.employees)
        if key not in self.accounts:
            account_id = self._next_id("001")
            self.accounts[key] = account_id
            website = "https://www." + person.company.lower().replace(" ", "") + ".example"
            self.org.insert(ACCOUNT, {
                "Id": account_id, "Name": person.company, "Industry": person.industry or None,
                "NumberOfEmployees": person.employees, "BillingCountry": person.country or None,
                "Website": website, "OwnerId": owner if owner.startswith("005")
                else self.integration_user, **self._stamps(person.created_at)})
        return self.accounts[key]

    def _converted_lead(self, person: WorldPerson, common: dict[str, Any], contact_id: str,
                        account_id: str) -> str:
        lead_id = make_id("00Q", self.world.size + person.index + 1)
        created = person.created_at - timedelta(days=3)
        self.org.insert(LEAD, {
            **common, **self._stamps(created, person.created_at), "Id": lead_id,
            "Company": person.company, "Industry": person.industry or None,
            "NumberOfEmployees": person.employees, "Country": person.country or None,
            "OwnerId": self.integration_user, "Status": "Closed - Converted",
            "IsConverted": True, "ConvertedDate": person.created_at.date(),
            "ConvertedContactId": contact_id, "ConvertedAccountId": account_id,
            "Syncer_Stage__c": None})
        return lead_id

    def _campaign(self, campaign_type: str, name: str) -> str:
        key = (campaign_type, name)
        if key not in self.campaigns:
            campaign_id = self._next_id("701")
            self.campaigns[key] = campaign_id
            start = self.world.now - timedelta(days=200)
            self.org.insert(CAMPAIGN, {
                "Id": campaign_id, "Name": name, "Type": campaign_type,
                "Status": "In Progress", "IsActive": True, "StartDate": start.date(),
                "OwnerId": self.integration_user, **self._stamps(start)})
        return self.campaigns[key]

    def _activity(self, activity: WorldActivity, member: dict[str, str | None],
                  record_id: str, task_owner: str) -> None:
        at = activity.occurred_at
        membership = campaign_membership(activity)
        if membership is not None:
            campaign_type, name, status = membership
            responded = status in _RESPONDED
            self.org.insert(CAMPAIGN_MEMBER, {
                "Id": self._next_id("00v"), "CampaignId": self._campaign(campaign_type, name),
                **member, "Status": status, "HasResponded": responded,
                "FirstRespondedDate": at.date() if responded else None, **self._stamps(at)})
            return
        task_type, subject = task_fields(activity)
        self.org.insert(TASK, {
            "Id": self._next_id("00T"), "WhoId": record_id, "Subject": subject,
            "Type": task_type, "TaskSubtype": "Task", "Status": "Completed",
            "Priority": "Normal", "ActivityDate": at.date(),
            "Description": activity.detail.get("url"), "OwnerId": task_owner,
            **self._stamps(at)})


def seed_org(world: World, org: SalesforceOrg) -> OrgSeeder:
    """Fill `org` from `world`; returns the seeder (its ids of the queue and users)."""
    seeder = OrgSeeder(world, org)
    seeder.seed()
    return seeder
