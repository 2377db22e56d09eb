"""How the synthetic World looks inside a Salesforce org, generated lazily row by row.

People in Salesforce become Leads (00Q) or Contacts (003, each under the Account (001) of
their company); reps become Users (005); every salesforce-channel activity becomes exactly
one row whose CreatedDate is the moment it happened:

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
rep, and about one in twenty is already at SQL. People who reached opportunity or customer
in the world (sandbox_outcomes: about one in six) hold that stage in Syncer_Stage__c, with
an active rep, and LeadSource says where each person came from. About a fifth of Contacts
came from a converted Lead, which stays behind with IsConverted = true (locked for writes).

Users, the queue and the campaigns are a few dozen rows, stored. Everything else is
generated on demand by the tables of sandbox_tables.py from the row builders here: a row's
id encodes the world person (and activity) it comes from.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from connectors.sandbox.index import pack
from connectors.sandbox.outcomes import SOURCE_BY_KEY, PersonOutcome
from connectors.sandbox.salesforce.rows import Row
from connectors.sandbox.salesforce.schema import (
    CAMPAIGN,
    CAMPAIGN_MEMBER,
    GROUP,
    SYNCER_FIELD_NAMES,
    TASK,
    USER,
    ObjectSchema,
    make_id,
)
from connectors.sandbox.world import (
    CONTENT_ASSETS,
    EMAILS,
    IN_SALESFORCE,
    SALESFORCE_CONTACT,
    WEBINARS,
    World,
    WorldActivity,
    WorldPerson,
)
from syncer.domain.types import ActivityType

INTEGRATION_EMAIL = "integration@syncer-sandbox.test"
QUEUE_NAME = "Unassigned Leads"
#: the share of records already owned by a rep, and already in a sales-owned stage.
REP_OWNED_SHARE = 0.10
SALES_STAGE_SHARE = 0.05
CONVERTED_LEAD_SHARE = 0.20
#: what the LeadSource was drawn from before the world had sources (still drawn, unused)
_RETIRED_SOURCE_DRAW = ("Web", "Webinar", "Content", "Other")

_EMAIL_STATUSES = {ActivityType.EMAIL_OPEN: "Opened", ActivityType.EMAIL_CLICK: "Clicked",
                   ActivityType.EMAIL_BOUNCE: "Bounced",
                   ActivityType.UNSUBSCRIBE: "Unsubscribed"}
_WEBSITE_FORMS = (ActivityType.FORM_FILL, ActivityType.NEWSLETTER_SIGNUP,
                  ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES,
                  ActivityType.PRICING_REQUEST)
_RESPONDED = frozenset({"Registered", "Attended", "Responded", "Clicked"})
#: activity types recorded as CampaignMember rows; every other type is a Task.
MEMBER_KINDS = frozenset({ActivityType.WEBINAR_REGISTRATION, ActivityType.WEBINAR_ATTENDANCE,
                          ActivityType.CONTENT_DOWNLOAD, *_EMAIL_STATUSES, *_WEBSITE_FORMS})
#: every campaign the world's activities can belong to, in id order.
CAMPAIGNS: tuple[tuple[str, str], ...] = (
    *(("Webinar", name) for name in WEBINARS), *(("Content", name) for name in CONTENT_ASSETS),
    *(("Email", name) for name in EMAILS),
    *(("Website", name) for name in ("Contact us", "Event sign-up", "Newsletter",
                                     "Request a demo", "Contact sales", "Pricing request",
                                     "Website form")))


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


class SalesforceDraws(NamedTuple):
    """What the org adds to a world person, from the person's own Salesforce stream."""

    modified_fraction: float
    owner: str
    stage: str | None
    converted: bool  # a Contact that came from a (now converted) Lead


class SeededOrg(Protocol):
    """What seeding needs of the org (connectors/sandbox/salesforce/org.py's SalesforceOrg,
    which imports the tables that import this module)."""

    def insert(self, schema: ObjectSchema, row: Row) -> None: ...


class OrgSeeder:
    """Stores the org's small tables and generates the rest of it from a World on demand."""

    def __init__(self, world: World, org: SeededOrg) -> None:
        self.world = world
        self.org = org
        self.setup_time = world.now - timedelta(days=900)
        self.counters: dict[str, int] = {}
        self.campaigns: dict[tuple[str, str], str] = {}
        self.integration_user = ""
        self.queue = ""
        self.reps: list[str] = []
        self.active_reps: list[str] = []
        #: per person: 0 not yet drawn, 1 no converted lead, 2 a converted lead.
        self._converted = bytearray(world.size)

    def _next_id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return make_id(prefix, self.counters[prefix])

    def _stamps(self, created: datetime, modified: datetime | None = None) -> Row:
        return {"CreatedDate": created, "LastModifiedDate": modified or created,
                "SystemModstamp": modified or created, "IsDeleted": False}

    def seed(self) -> None:
        """Store users, the queue and campaigns (the generated tables are attached by
        sandbox_tables.seed_org)."""
        self._users()
        self._campaigns()

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

    def _campaigns(self) -> None:
        start = self.world.now - timedelta(days=200)
        for campaign_type, name in CAMPAIGNS:
            campaign_id = self._next_id("701")
            self.campaigns[(campaign_type, name)] = campaign_id
            self.org.insert(CAMPAIGN, {
                "Id": campaign_id, "Name": name, "Type": campaign_type,
                "Status": "In Progress", "IsActive": True, "StartDate": start.date(),
                "OwnerId": self.integration_user, **self._stamps(start)})

    # -- one person --------------------------------------------------------------------
    def draws(self, index: int) -> SalesforceDraws:
        """The person's Salesforce-only values; cheap (no world generation)."""
        rng = random.Random(f"salesforce:{self.world.seed}:{index}")
        rng.choice(_RETIRED_SOURCE_DRAW)  # LeadSource is the world's now; draws stay put
        fraction = rng.random()
        contact = bool(self.world.flags(index) & SALESFORCE_CONTACT)
        owner, stage = self._ownership(rng, self.integration_user if contact else self.queue)
        converted = contact and rng.random() < CONVERTED_LEAD_SHARE
        return SalesforceDraws(fraction, owner, stage, converted)

    def record_inputs(self, index: int) -> tuple[WorldPerson, SalesforceDraws]:
        """Person `index` (without activities) and their draws with the world's outcome
        applied: what lead_row and contact_row build a record from."""
        person, outcome = self.world.person_and_outcome(index)
        return person, self.with_outcome(person, self.draws(index), outcome)

    def with_outcome(self, person: WorldPerson, draws: SalesforceDraws,
                     outcome: PersonOutcome) -> SalesforceDraws:
        """The draws with the world's planted outcome (sandbox_outcomes) applied: a person
        who reached opportunity or customer has that stage and an active rep; nobody else
        is past SQL."""
        if outcome.stage is not None:
            owner = draws.owner
            if owner not in self.active_reps and self.active_reps:
                rng = random.Random(f"salesforce-rep:{self.world.seed}:{person.index}")
                owner = rng.choice(self.active_reps)
            return draws._replace(stage=outcome.stage.title(), owner=owner)
        if draws.stage in ("Opportunity", "Customer"):
            return draws._replace(stage="SQL")
        return draws

    def _ownership(self, rng: random.Random, default_owner: str) -> tuple[str, str | None]:
        """(OwnerId, Syncer_Stage__c): sales-owned stages always come with an active rep."""
        roll = rng.random()
        if roll < SALES_STAGE_SHARE and self.active_reps:
            return rng.choice(self.active_reps), rng.choice(("SQL", "Opportunity", "Customer"))
        if roll < REP_OWNED_SHARE and self.reps:
            return rng.choice(self.reps), None
        return default_owner, None

    def has_converted_lead(self, index: int) -> bool:
        """Whether Contact person `index` came from a converted Lead (remembered)."""
        known = self._converted[index]
        if not known:
            known = self._converted[index] = 2 if self.draws(index).converted else 1
        return known == 2

    def record_id(self, index: int) -> str:
        """The Lead or Contact id of a person who is in Salesforce."""
        prefix = "003" if self.world.flags(index) & SALESFORCE_CONTACT else "00Q"
        return make_id(prefix, index + 1)

    def converted_lead_id(self, index: int) -> str:
        return make_id("00Q", self.world.size + index + 1)

    def _common(self, person: WorldPerson, draws: SalesforceDraws) -> Row:
        span = max(0.0, (self.world.now - person.created_at).total_seconds())
        modified = person.created_at + timedelta(seconds=int(span * draws.modified_fraction))
        return {
            "FirstName": person.first_name or None, "LastName": person.last_name,
            "Title": person.title or None, "Email": person.email,
            "LeadSource": SOURCE_BY_KEY[person.source].salesforce,
            **dict.fromkeys(SYNCER_FIELD_NAMES),
            **self._stamps(person.created_at, modified),
        }

    def lead_row(self, person: WorldPerson, draws: SalesforceDraws) -> Row:
        """The Lead of `person`; `draws` as record_inputs gives them."""
        return {
            **self._common(person, draws), "Id": make_id("00Q", person.index + 1),
            "Company": person.company, "Industry": person.industry or None,
            "NumberOfEmployees": person.employees, "Country": person.country or None,
            "OwnerId": draws.owner,
            "Status": "Working - Contacted" if draws.stage else "Open - Not Contacted",
            "IsConverted": False, "ConvertedDate": None, "ConvertedContactId": None,
            "ConvertedAccountId": None, "Syncer_Stage__c": draws.stage}

    def contact_row(self, person: WorldPerson, draws: SalesforceDraws) -> Row:
        """The Contact of `person`; `draws` as record_inputs gives them."""
        return {
            **self._common(person, draws), "Id": make_id("003", person.index + 1),
            "AccountId": account_id(person.company_index),
            "MailingCountry": person.country or None, "OwnerId": draws.owner,
            "Syncer_Stage__c": draws.stage}

    def converted_lead_row(self, person: WorldPerson, draws: SalesforceDraws) -> Row:
        created = person.created_at - timedelta(days=3)
        return {
            **self._common(person, draws), **self._stamps(created, person.created_at),
            "Id": self.converted_lead_id(person.index),
            "Company": person.company, "Industry": person.industry or None,
            "NumberOfEmployees": person.employees, "Country": person.country or None,
            "OwnerId": self.integration_user, "Status": "Closed - Converted",
            "IsConverted": True, "ConvertedDate": person.created_at.date(),
            "ConvertedContactId": make_id("003", person.index + 1),
            "ConvertedAccountId": account_id(person.company_index), "Syncer_Stage__c": None}

    def account_row(self, company_index: int) -> Row:
        """The Account of a company: in a world with `salesforce_accounts`, at its own web
        domain, owned by a rep (in turn) and with a revenue; else as older worlds had it."""
        company = self.world.company(company_index)
        row: Row = {
            "Id": account_id(company_index), "Name": company.name,
            "Industry": company.industry or None, "NumberOfEmployees": company.employees,
            "BillingCountry": company.country or None,
            "Website": "https://www." + company.name.lower().replace(" ", "") + ".example",
            "OwnerId": self.integration_user,
            **self._stamps(self.setup_time + timedelta(minutes=company_index))}
        if self.world.salesforce_accounts and self.active_reps:
            row.update(Website=f"https://www.{company.domain}",
                       OwnerId=self.active_reps[company_index % len(self.active_reps)],
                       AnnualRevenue=float(company.employees * REVENUE_PER_EMPLOYEE))
        return row

    def activity_rows(self, index: int, ordinals: set[int] | None = None
                      ) -> list[tuple[ObjectSchema, int, Row]]:
        """(table, id number, row) for the person's salesforce activities (all, or only
        those with the given ordinals)."""
        flags = self.world.flags(index)
        if not flags & IN_SALESFORCE:
            return []
        person = self.world.person(index)
        draws = self.with_outcome(person, self.draws(index), self.world.outcome_of(person))
        record_id = self.record_id(index)
        if flags & SALESFORCE_CONTACT:
            member = {"LeadId": self.converted_lead_id(index) if draws.converted else None,
                      "ContactId": record_id}
        else:
            member = {"LeadId": record_id, "ContactId": None}
        task_owner = draws.owner if draws.owner.startswith("005") else self.integration_user
        made = []
        for ordinal, activity in enumerate(person.activities):
            if activity.channel != "salesforce" or (ordinals is not None
                                                    and ordinal not in ordinals):
                continue
            number = pack(index, ordinal) + 1
            membership = campaign_membership(activity)
            if membership is None:
                made.append((TASK, number, self._task(activity, number, record_id,
                                                      task_owner)))
            else:
                made.append((CAMPAIGN_MEMBER, number,
                             self._member(activity, membership, number, member)))
        return made

    def _member(self, activity: WorldActivity, membership: tuple[str, str, str], number: int,
                member: dict[str, str | None]) -> Row:
        campaign_type, name, status = membership
        responded = status in _RESPONDED
        at = activity.occurred_at
        return {"Id": make_id("00v", number),
                "CampaignId": self.campaigns[(campaign_type, name)], **member,
                "Status": status, "HasResponded": responded,
                "FirstRespondedDate": at.date() if responded else None, **self._stamps(at)}

    def _task(self, activity: WorldActivity, number: int, record_id: str,
              task_owner: str) -> Row:
        task_type, subject = task_fields(activity)
        at = activity.occurred_at
        return {"Id": make_id("00T", number), "WhoId": record_id, "Subject": subject,
                "Type": task_type, "TaskSubtype": "Task", "Status": "Completed",
                "Priority": "Normal", "ActivityDate": at.date(),
                "Description": activity.detail.get("url"), "OwnerId": task_owner,
                "CallDurationInSeconds": _seconds(activity.detail.get("duration")),
                **self._stamps(at)}


def _seconds(duration: str | None) -> int | None:
    """Seconds on a page: website-tracking integrations log them in the Task's duration."""
    return int(duration) if duration else None


#: a world with accounts gives each Account this revenue per employee (USD)
REVENUE_PER_EMPLOYEE = 180_000


def account_id(company_index: int) -> str:
    return make_id("001", company_index + 1)
