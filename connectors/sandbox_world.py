"""A deterministic synthetic go-to-market world that both sandbox CRMs serve.

One seed and one size give the same people, companies, sales users and 180 days of
activity every time. Each person is generated from their own index (no shared random
stream), so any person can be produced on its own: the sandboxes can generate lazily and
tests can recompute what a record should hold. A share of people exist in both CRMs with
the same email, which is what identity resolution must merge.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from syncer.domain import ActivityType

HISTORY_DAYS = 180

FIRST_NAMES = (
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mateo", "Sofia", "Lucas", "Mia", "Amara",
    "Hiroshi", "Yuki", "Priya", "Arjun", "Chen", "Wei", "Fatima", "Omar", "Lena", "Jonas",
    "Elif", "Mehmet", "Ines", "Tomas", "Zara", "Kofi", "Ngozi", "Sven", "Astrid", "Diego",
    "Camila", "Lars", "Anya", "Pavel", "Grace", "Ethan", "Chloe", "Hugo", "Nora", "Felix",
)
LAST_NAMES = (
    "Smith", "Garcia", "Muller", "Rossi", "Tanaka", "Kim", "Nguyen", "Patel", "Okafor",
    "Silva", "Johansson", "Novak", "Dubois", "Kowalski", "Yilmaz", "Haddad", "Cohen",
    "Fischer", "Larsen", "Moreau", "Costa", "Ivanova", "Brown", "Wilson", "Chen", "Singh",
    "Sato", "Andersen", "Lopez", "Martin", "Schmidt", "Bianchi", "Hansen", "Walker",
)
#: (title, weight). Seniority drives fit in the default model.
TITLES = (
    ("Chief Revenue Officer", 2), ("VP of Marketing", 4), ("VP Sales", 3),
    ("Head of Revenue Operations", 4), ("Director of Marketing", 6),
    ("Director, Sales Operations", 4), ("Marketing Operations Manager", 8),
    ("Sales Operations Manager", 6), ("Demand Generation Manager", 7),
    ("Marketing Manager", 9), ("Account Executive", 6), ("SDR", 5),
    ("Marketing Coordinator", 6), ("Software Engineer", 6), ("Data Analyst", 4),
    ("Intern", 3), ("Student", 3), ("Consultant", 4), ("Founder & CEO", 3), ("", 4),
)
INDUSTRIES = (
    ("Software", 10), ("Financial Services", 6), ("Healthcare", 5), ("Manufacturing", 5),
    ("Retail", 4), ("Education", 4), ("Telecommunications", 3), ("Media", 3),
    ("Professional Services", 4), ("Non-Profit", 2), ("Government", 2), ("", 3),
)
COUNTRIES = (
    ("United States", 30), ("United Kingdom", 10), ("Germany", 8), ("France", 6),
    ("Canada", 6), ("Netherlands", 4), ("Sweden", 3), ("Spain", 3), ("India", 6),
    ("Australia", 4), ("Japan", 3), ("Brazil", 4), ("Singapore", 2), ("Nigeria", 2),
    ("", 3),
)
COMPANY_WORDS = (
    "Acme", "Globex", "Initech", "Umbra", "Vertex", "Nimbus", "Quanta", "Helix", "Orbit",
    "Lumen", "Apex", "Cobalt", "Nova", "Pioneer", "Summit", "Beacon", "Cascade", "Zenith",
    "Atlas", "Harbor", "Keystone", "Meridian", "Sierra", "Tandem", "Vanguard", "Willow",
)
COMPANY_SUFFIXES = ("Labs", "Systems", "Group", "Analytics", "Health", "Capital", "Works",
                    "Logistics", "Software", "Partners")
#: The sales team of the sandbox company; index 6 has left (inactive).
SALES_REPS = (
    ("Dana", "Whitfield"), ("Marco", "Bellini"), ("Keiko", "Arai"), ("Samuel", "Osei"),
    ("Ingrid", "Holm"), ("Rafael", "Duarte"), ("Olga", "Petrova"), ("Priya", "Raman"),
)
FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
COMPETITOR_DOMAINS = ("leadscorely.com", "routewise.io")
CONTENT_ASSETS = ("State of RevOps 2026 report", "Lead scoring playbook",
                  "Routing benchmark ebook", "MQL definition worksheet")
WEBINARS = ("Scoring that sales trusts", "Speed to lead in practice", "RevOps office hours")
EMAILS = ("Monthly newsletter", "Product update", "Webinar invitation", "Nurture #3")
PAGES = ("/", "/blog/lead-scoring", "/product", "/customers", "/integrations",
         "/blog/routing", "/careers", "/docs")

#: (activity type, weight, typical count factor) for an engaged person's history.
ACTIVITY_MIX = (
    (ActivityType.EMAIL_OPEN, 30), (ActivityType.PAGE_VIEW, 25), (ActivityType.EMAIL_CLICK, 10),
    (ActivityType.CONTENT_DOWNLOAD, 6), (ActivityType.FORM_FILL, 4),
    (ActivityType.WEBINAR_REGISTRATION, 4), (ActivityType.WEBINAR_ATTENDANCE, 3),
    (ActivityType.PRICING_PAGE_VIEW, 5), (ActivityType.NEWSLETTER_SIGNUP, 2),
    (ActivityType.UNSUBSCRIBE, 1), (ActivityType.EMAIL_BOUNCE, 1),
)
HAND_RAISES = (ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES,
               ActivityType.PRICING_REQUEST)


@dataclass(frozen=True, slots=True)
class WorldUser:
    """A sales rep; the same human exists in both CRMs (matched by email)."""

    index: int
    email: str
    first_name: str
    last_name: str
    active: bool


@dataclass(frozen=True, slots=True)
class WorldActivity:
    """Something a person did. `channel` says which CRM recorded it."""

    type: ActivityType
    occurred_at: datetime
    channel: str
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorldPerson:
    index: int
    email: str
    first_name: str
    last_name: str
    title: str
    company: str
    domain: str
    industry: str
    employees: int
    country: str
    created_at: datetime
    in_hubspot: bool
    in_salesforce: bool
    salesforce_object: str
    activities: tuple[WorldActivity, ...]


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights=weights, k=1)[0]


class World:
    """The synthetic world for one (seed, size, now). People are generated on demand."""

    def __init__(self, seed: int, size: int, now: datetime, *, users: int = 8,
                 shared_share: float = 0.3) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        self.seed = seed
        self.size = size
        self.now = now.astimezone(timezone.utc).replace(microsecond=0)
        self.shared_share = shared_share
        self.users = tuple(self._user(i) for i in range(users))

    def _rng(self, *parts: int) -> random.Random:
        value = self.seed
        for part in parts:
            value = (value * 1_000_003 + part) & 0xFFFFFFFFFFFF
        return random.Random(value)

    @staticmethod
    def _user(i: int) -> WorldUser:
        """Reps are the same for every seed, so example configs can name them."""
        first, last = SALES_REPS[i % len(SALES_REPS)]
        # One rep is inactive (left the company) so routing must skip someone.
        return WorldUser(i, f"{first.lower()}.{last.lower()}@syncer-sandbox.test", first,
                         last, active=(i != 6))

    def people(self) -> list[WorldPerson]:
        return [self.person(i) for i in range(self.size)]

    def person(self, i: int) -> WorldPerson:
        rng = self._rng(11, i)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company_index = rng.randrange(max(3, self.size // 6))
        crng = self._rng(13, company_index)
        company = f"{crng.choice(COMPANY_WORDS)} {crng.choice(COMPANY_SUFFIXES)}"
        domain = company.lower().replace(" ", "") + f"{company_index}.example"
        industry = _weighted(crng, INDUSTRIES)
        employees = int(crng.lognormvariate(4.5, 1.6)) + 1
        country = _weighted(crng, COUNTRIES)
        roll = rng.random()
        if roll < 0.06:
            domain = rng.choice(FREE_MAIL_DOMAINS)
        elif roll < 0.08:
            domain = rng.choice(COMPETITOR_DOMAINS)
        email = f"{first.lower()}.{last.lower()}.{i}@{domain}"
        placement = rng.random()
        shared = placement < self.shared_share
        in_hubspot = shared or placement < self.shared_share + (1 - self.shared_share) / 2
        in_salesforce = shared or not in_hubspot
        created_at = self.now - timedelta(days=HISTORY_DAYS + rng.randrange(0, 365),
                                          seconds=rng.randrange(86_400))
        return WorldPerson(
            index=i, email=email, first_name=first, last_name=last,
            title=_weighted(rng, TITLES), company=company, domain=domain,
            industry=industry, employees=employees, country=country, created_at=created_at,
            in_hubspot=in_hubspot, in_salesforce=in_salesforce,
            salesforce_object="Contact" if rng.random() < 0.25 else "Lead",
            activities=self._activities(rng, in_hubspot, in_salesforce),
        )

    def _activities(self, rng: random.Random, in_hubspot: bool,
                    in_salesforce: bool) -> tuple[WorldActivity, ...]:
        engagement = rng.choice((0, 1, 1, 2, 2, 3, 5, 8))  # how active this person is
        count = int(engagement * rng.uniform(1.0, 3.0))
        channels = [c for c, on in (("hubspot", in_hubspot), ("salesforce", in_salesforce))
                    if on]
        mix = tuple((t.value, w) for t, w in ACTIVITY_MIX)
        made: list[WorldActivity] = []
        for _ in range(count):
            kind = ActivityType(_weighted(rng, mix))
            made.append(self._activity(rng, kind, rng.choice(channels)))
        if engagement >= 5 and rng.random() < 0.35:
            made.append(self._activity(rng, rng.choice(HAND_RAISES), rng.choice(channels)))
        made.sort(key=lambda a: a.occurred_at)
        return tuple(made)

    def _activity(self, rng: random.Random, kind: ActivityType,
                  channel: str) -> WorldActivity:
        at = self.now - timedelta(seconds=rng.randrange(HISTORY_DAYS * 86_400))
        detail: dict[str, str] = {}
        if kind in (ActivityType.PAGE_VIEW,):
            detail["url"] = "https://www.syncer-sandbox.test" + rng.choice(PAGES)
        elif kind is ActivityType.PRICING_PAGE_VIEW:
            detail["url"] = "https://www.syncer-sandbox.test/pricing"
        elif kind in (ActivityType.EMAIL_OPEN, ActivityType.EMAIL_CLICK,
                      ActivityType.EMAIL_BOUNCE, ActivityType.UNSUBSCRIBE):
            detail["email"] = rng.choice(EMAILS)
        elif kind is ActivityType.CONTENT_DOWNLOAD:
            detail["asset"] = rng.choice(CONTENT_ASSETS)
            detail["form"] = "Content download"
        elif kind in (ActivityType.WEBINAR_REGISTRATION, ActivityType.WEBINAR_ATTENDANCE):
            detail["campaign"] = rng.choice(WEBINARS)
        elif kind is ActivityType.FORM_FILL:
            detail["form"] = "Contact us" if rng.random() < 0.5 else "Event sign-up"
        elif kind is ActivityType.NEWSLETTER_SIGNUP:
            detail["form"] = "Newsletter"
        elif kind is ActivityType.DEMO_REQUEST:
            detail["form"] = "Request a demo"
        elif kind is ActivityType.CONTACT_SALES:
            detail["form"] = "Contact sales"
        elif kind is ActivityType.PRICING_REQUEST:
            detail["form"] = "Pricing request"
        return WorldActivity(kind, at, channel, detail)
