"""A deterministic synthetic go-to-market world that both sandbox CRMs serve.

One seed and one size give the same people, companies, sales users and 180 days of
activity every time. Each person is generated from their own index (no shared random
stream), so any person can be produced on its own: the sandboxes generate lazily (a
million people cost no memory until asked for) and tests can recompute what a record
should hold. A share of people exist in both CRMs with the same email, which is what
identity resolution must merge.

Generation is on the hot path of the sandboxes at scale, so weighted choices use
precomputed cumulative weights; they draw exactly what `random.choices` would, so a seed
gives the same world as before the speed-up.
"""


from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from connectors.sandbox.index import WorldIndex
from connectors.sandbox.outcomes import SOURCES, PersonOutcome, outcome_of
from connectors.sandbox.world_tables import (
    ACTIVITY_MIX,
    BASE_MEAN_ACTIVITIES,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    COMPETITOR_DOMAINS,
    CONTENT_ASSETS,
    COUNTRIES,
    EMAILS,
    ENGAGEMENT_LEVELS,
    FIRST_NAMES,
    FREE_MAIL_DOMAINS,
    HAND_RAISES,
    HISTORY_DAYS,
    INDUSTRIES,
    LAST_NAMES,
    MAX_ACTIVITIES_PER_PERSON,
    PAGES,
    SALES_REPS,
    TITLES,
    WEBINARS,
    Weighted,
    activity_scale_for,
    most_activities,
)
from connectors.sandbox.world_types import (
    IN_HUBSPOT,
    IN_SALESFORCE,
    SALESFORCE_CONTACT,
    Drawn,
    RawActivity,
    WorldActivity,
    WorldCompany,
    WorldPerson,
    WorldUser,
)
from syncer.domain.types import ActivityType

# What other modules import from here (the tables and types moved to world_tables.py and
# world_types.py).
__all__ = [
    "ACTIVITY_MIX", "BASE_MEAN_ACTIVITIES", "CONTENT_ASSETS", "COUNTRIES", "EMAILS",
    "FIRST_NAMES", "HAND_RAISES", "HISTORY_DAYS", "INDUSTRIES", "IN_HUBSPOT", "IN_SALESFORCE",
    "LAST_NAMES", "MAX_ACTIVITIES_PER_PERSON", "PAGES", "SALESFORCE_CONTACT", "SALES_REPS",
    "TITLES", "WEBINARS", "Drawn", "RawActivity", "World", "WorldActivity", "WorldCompany",
    "WorldPerson", "WorldUser", "activity_scale_for", "most_activities",
]

_TITLE = Weighted(TITLES)
_SOURCE = Weighted(tuple((source, source.weight) for source in SOURCES))
_INDUSTRY = Weighted(INDUSTRIES)
_COUNTRY = Weighted(COUNTRIES)
_ACTIVITY_KIND = Weighted(ACTIVITY_MIX)
_EMAIL_KINDS = frozenset({ActivityType.EMAIL_OPEN, ActivityType.EMAIL_CLICK,
                          ActivityType.EMAIL_BOUNCE, ActivityType.UNSUBSCRIBE})
_WEBINAR_KINDS = frozenset({ActivityType.WEBINAR_REGISTRATION,
                            ActivityType.WEBINAR_ATTENDANCE})
_FIXED_FORMS = {ActivityType.NEWSLETTER_SIGNUP: "Newsletter",
                ActivityType.DEMO_REQUEST: "Request a demo",
                ActivityType.CONTACT_SALES: "Contact sales",
                ActivityType.PRICING_REQUEST: "Pricing request"}
_SITE = "https://www.syncer-sandbox.test"
_HISTORY_SECONDS = HISTORY_DAYS * 86_400
_HISTORY_BITS = _HISTORY_SECONDS.bit_length()
COMPANY_CACHE_SIZE = 50_000
_KNOWN = 0x80  # set on every computed flags byte, so 0 means "not drawn yet"
FLAGS_BLOCK = 1024


def _below(rng: random.Random, n: int) -> int:
    """`rng.randrange(n)` (and the index `rng.choice` draws), without the wrappers."""
    below: int = rng._randbelow(n)  # type: ignore[attr-defined]
    return below


class World:
    """The synthetic world for one (seed, size, now). People are generated on demand.

    `activity_scale` multiplies how many activities each person has (1.0: about 5.2 on
    average; 1.93: about 10); other values of a person do not depend on it.
    `syncer_fields`: both CRMs already hold the custom fields syncer writes (as after
    `syncer setup`); False serves a fresh portal and org without them, for setup to create.
    `hubspot_companies`: the HubSpot portal also holds a company per world company, and
    each contact whose email domain is its company's domain has it as its primary company
    (connectors/sandbox/hubspot/company_seed.py); off, the portal has no companies.
    `salesforce_accounts`: the org's Accounts match their people (issue 20): an Account's
    Website is its company's web domain (its people's email domain), a rep owns it and it
    has an AnnualRevenue (connectors/sandbox/salesforce/seed.py); off, Accounts are as
    before (the demo's figures do not move).
    """

    def __init__(self, seed: int, size: int, now: datetime, *, users: int = 8,
                 shared_share: float = 0.3, activity_scale: float = 1.0,
                 syncer_fields: bool = True, hubspot_companies: bool = False,
                 salesforce_accounts: bool = False) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        if activity_scale < 0:
            raise ValueError("activity_scale must not be negative")
        if most_activities(activity_scale) > MAX_ACTIVITIES_PER_PERSON:
            raise ValueError(
                f"activity_scale {activity_scale:g} lets one person have up to "
                f"{most_activities(activity_scale)} activities; the sandboxes number at most "
                f"{MAX_ACTIVITIES_PER_PERSON} per person. Fix: lower activity_scale (or "
                "--activities)")
        self.seed = seed
        self.size = size
        self.now = now.astimezone(timezone.utc).replace(microsecond=0)
        self.shared_share = shared_share
        self.activity_scale = activity_scale
        self.syncer_fields = syncer_fields
        self.hubspot_companies = hubspot_companies
        self.salesforce_accounts = salesforce_accounts
        self.users = tuple(self._user(i) for i in range(users))
        self.companies = max(3, size // 6)
        self._company_cache: dict[int, WorldCompany] = {}
        self._flags: bytearray | None = None
        self._flags_lock = threading.Lock()
        self._index: WorldIndex | None = None
        self._index_lock = threading.Lock()

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
        """Every person, materialised: for small worlds and tests (see `index()` at scale)."""
        return [self.person(i) for i in range(self.size)]

    def index(self, workers: int | None = None) -> WorldIndex:
        """The compact activity-time index of this world, built once on first use (one pass
        over every person: about 30 s for a million people in one process; worlds of
        200,000 and more use up to two processes unless `workers` says). Thread-safe."""
        with self._index_lock:
            if self._index is None:
                if workers is None:
                    workers = min(2, os.cpu_count() or 1) if self.size >= 200_000 else 1
                self._index = WorldIndex.build(self, workers)
            return self._index

    def index_ready(self) -> bool:
        return self._index is not None

    def company(self, index: int) -> WorldCompany:
        """The company with this index: the same for every person who works there."""
        cached = self._company_cache.get(index)
        if cached is not None:
            return cached
        if len(self._company_cache) >= COMPANY_CACHE_SIZE:
            self._company_cache.clear()  # bounded memory; a refill costs microseconds
        crng = self._rng(13, index)
        name = f"{COMPANY_WORDS[_below(crng, len(COMPANY_WORDS))]} " \
               f"{COMPANY_SUFFIXES[_below(crng, len(COMPANY_SUFFIXES))]}"
        industry = _INDUSTRY.pick(crng)
        employees = int(crng.lognormvariate(4.5, 1.6)) + 1
        country = _COUNTRY.pick(crng)
        domain = name.lower().replace(" ", "") + f"{index}.example"
        made = WorldCompany(index, name, domain, industry, employees, country)
        self._company_cache[index] = made
        return made

    def person(self, i: int, *, with_activities: bool = True) -> WorldPerson:
        """Person `i`. Without activities it costs a fraction: what the CRM records need."""
        return self._assemble(i, self.draw(i, with_activities), with_activities)

    def _assemble(self, i: int, drawn: Drawn, with_activities: bool) -> WorldPerson:
        company = self.company(drawn.company_index)
        domain = drawn.domain or company.domain
        now = self.now
        activities = tuple(WorldActivity(kind, now - timedelta(seconds=offset), channel, detail)
                           for offset, kind, channel, detail in drawn.activities
                           ) if with_activities else ()
        return WorldPerson(
            index=i, email=f"{drawn.first.lower()}.{drawn.last.lower()}.{i}@{domain}",
            first_name=drawn.first, last_name=drawn.last, title=drawn.title,
            company=company.name, domain=domain, industry=company.industry,
            employees=company.employees, country=company.country,
            created_at=now - timedelta(seconds=drawn.created_offset),
            in_hubspot=bool(drawn.flags & IN_HUBSPOT),
            in_salesforce=bool(drawn.flags & IN_SALESFORCE),
            salesforce_object="Contact" if drawn.flags & SALESFORCE_CONTACT else "Lead",
            activities=activities, company_index=company.index,
            source=_SOURCE.pick(self._rng(17, i)).key)

    def outcome(self, i: int) -> PersonOutcome:
        """Person `i`'s source, visit counts and whether they reached opportunity or
        customer (see sandbox_outcomes)."""
        return self.person_and_outcome(i)[1]

    def person_and_outcome(self, i: int) -> tuple[WorldPerson, PersonOutcome]:
        """Person `i` without activities, and their outcome, from one draw: what a CRM
        record needs, cheaper than the person with activities (no datetimes made)."""
        drawn = self.draw(i, True)
        person = self._assemble(i, drawn, False)
        moments = [(offset, kind) for offset, kind, _, _ in drawn.activities]
        return person, outcome_of(person, moments, self._rng(23, i), self.now)

    def outcome_of(self, person: WorldPerson) -> PersonOutcome:
        """The outcome of a person already generated with activities."""
        now = self.now
        moments = [(int((now - a.occurred_at).total_seconds()), a.type)
                   for a in person.activities]
        return outcome_of(person, moments, self._rng(23, person.index), now)

    def flags(self, i: int) -> int:
        """Where person `i` lives (IN_HUBSPOT | IN_SALESFORCE | SALESFORCE_CONTACT bits).

        Kept in one byte per person, filled a block at a time on first use, so scanning
        a CRM's records costs the draws once and an array lookup afterwards.
        """
        held = self._flags
        if held is None:
            held = self._flag_bytes()
        value = held[i]
        if not value:
            start = i - i % FLAGS_BLOCK
            for j in range(start, min(start + FLAGS_BLOCK, self.size)):
                held[j] = self.draw(j, False).flags | _KNOWN
            value = held[i]
        return value & ~_KNOWN

    def remember_flag_block(self, start: int, flags: bytes) -> None:
        """Record the flags of people start.. at once (from the index build)."""
        held = self._flags if self._flags is not None else self._flag_bytes()
        held[start:start + len(flags)] = bytes(value | _KNOWN for value in flags)

    def spec(self) -> dict[str, object]:
        """The constructor arguments: another process rebuilds the same world from them."""
        spec: dict[str, object] = {
            "seed": self.seed, "size": self.size, "now": self.now, "users": len(self.users),
            "shared_share": self.shared_share, "activity_scale": self.activity_scale}
        if self.hubspot_companies:
            spec["hubspot_companies"] = True
        if self.salesforce_accounts:
            spec["salesforce_accounts"] = True
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, object]) -> World:
        return cls(**spec)  # type: ignore[arg-type]

    def _flag_bytes(self) -> bytearray:
        with self._flags_lock:
            if self._flags is None:
                self._flags = bytearray(self.size)
            return self._flags

    def raw_activities(self, i: int) -> list[RawActivity]:
        """Person `i`'s activities as (seconds before now, type, channel, detail), in the
        order of `person(i).activities` (oldest first)."""
        return self.draw(i, True).activities

    def draw(self, i: int, with_activities: bool = True) -> Drawn:
        """Every random draw for person `i`, in the one fixed order the seed defines: the
        cheap way to learn where a person lives and when their activities happened."""
        rng = self._rng(11, i)
        first = FIRST_NAMES[_below(rng, len(FIRST_NAMES))]
        last = LAST_NAMES[_below(rng, len(LAST_NAMES))]
        company_index = _below(rng, self.companies)
        domain = None
        roll = rng.random()
        if roll < 0.06:
            domain = FREE_MAIL_DOMAINS[_below(rng, len(FREE_MAIL_DOMAINS))]
        elif roll < 0.08:
            domain = COMPETITOR_DOMAINS[_below(rng, len(COMPETITOR_DOMAINS))]
        placement = rng.random()
        shared = placement < self.shared_share
        in_hubspot = shared or placement < self.shared_share + (1 - self.shared_share) / 2
        in_salesforce = shared or not in_hubspot
        days = HISTORY_DAYS + _below(rng, 365)
        created_offset = days * 86_400 + _below(rng, 86_400)
        title = _TITLE.pick(rng)
        contact = rng.random() < 0.25
        flags = (IN_HUBSPOT if in_hubspot else 0) | (IN_SALESFORCE if in_salesforce else 0) \
            | (SALESFORCE_CONTACT if contact else 0)
        raw = self._raw_activities(rng, in_hubspot, in_salesforce) if with_activities else []
        if raw:
            _add_durations(self._rng(19, i), raw)
        return Drawn(first, last, company_index, domain, flags, created_offset, title, raw)

    def _raw_activities(self, rng: random.Random, in_hubspot: bool,
                        in_salesforce: bool) -> list[RawActivity]:
        below = rng._randbelow  # type: ignore[attr-defined]  # what choice/randrange draw
        engagement = ENGAGEMENT_LEVELS[below(len(ENGAGEMENT_LEVELS))]
        spread = 1.0 + 2.0 * rng.random()  # rng.uniform(1.0, 3.0)
        count = int(engagement * spread * self.activity_scale) if self.activity_scale != 1.0 \
            else int(engagement * spread)
        channels = [c for c, on in (("hubspot", in_hubspot), ("salesforce", in_salesforce))
                    if on]
        pick_kind, activity = _ACTIVITY_KIND.pick, self._raw_activity
        made: list[RawActivity] = []
        for _ in range(count):
            kind = pick_kind(rng)
            made.append(activity(rng, below, kind, channels[below(len(channels))]))
        if engagement >= 5 and rng.random() < 0.35:
            kind = HAND_RAISES[below(len(HAND_RAISES))]
            made.append(activity(rng, below, kind, channels[below(len(channels))]))
        made.sort(key=lambda a: -a[0])  # oldest first; stable for equal moments
        return made

    @staticmethod
    def _raw_activity(rng: random.Random, below: Callable[[int], int], kind: ActivityType,
                      channel: str) -> RawActivity:
        getrandbits = rng.getrandbits  # inlined below(_HISTORY_SECONDS): the same draws
        offset = getrandbits(_HISTORY_BITS)
        while offset >= _HISTORY_SECONDS:
            offset = getrandbits(_HISTORY_BITS)
        detail: dict[str, str] = {}
        if kind is ActivityType.PAGE_VIEW:
            detail["url"] = _SITE + PAGES[below(len(PAGES))]
        elif kind is ActivityType.PRICING_PAGE_VIEW:
            detail["url"] = _SITE + "/pricing"
        elif kind in _EMAIL_KINDS:
            detail["email"] = EMAILS[below(len(EMAILS))]
        elif kind is ActivityType.CONTENT_DOWNLOAD:
            detail["asset"] = CONTENT_ASSETS[below(len(CONTENT_ASSETS))]
            detail["form"] = "Content download"
        elif kind in _WEBINAR_KINDS:
            detail["campaign"] = WEBINARS[below(len(WEBINARS))]
        elif kind is ActivityType.FORM_FILL:
            detail["form"] = "Contact us" if rng.random() < 0.5 else "Event sign-up"
        elif kind in _FIXED_FORMS:
            detail["form"] = _FIXED_FORMS[kind]
        return offset, kind, channel, detail


def _add_durations(rng: random.Random, raw: list[RawActivity]) -> None:
    """Numeric attributes, from the person's own stream (the other draws stay as they
    were): `duration` in seconds on page views, in minutes on webinar attendance."""
    for _, kind, _, detail in raw:
        if kind is ActivityType.PAGE_VIEW or kind is ActivityType.PRICING_PAGE_VIEW:
            detail["duration"] = str(int(rng.lognormvariate(4.0, 1.0)) + 1)
        elif kind is ActivityType.WEBINAR_ATTENDANCE:
            detail["duration"] = str(5 + _below(rng, 56))
