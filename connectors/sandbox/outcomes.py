"""Where the world's people came from, how often they visited, and who went on to buy.

The synthetic world needs outcomes for `syncer model calibrate` and `backtest` to learn
from, and a test needs to know what there is to learn. So the outcome is planted: each
person's log-odds of reaching opportunity (or customer) is the sum of the explicit effects
below (fit, engagement, source), and a Bernoulli draw from the person's own random stream
adds the noise. A calibration that works recovers the sign and rough order of these
effects; one that does not, does not.

Everything here derives from one person's draw (their fields and activities) plus the
person's own streams, so the sandboxes stay lazy: a contact's source, counts and outcome
cost one person's generation, never a pass over the world.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.sandbox.world_types import WorldPerson
from syncer.domain.types import ActivityType


@dataclass(frozen=True, slots=True)
class LeadSource:
    """One way people find the company, as each CRM spells it, and what it does to the
    odds of buying (`effect`, log-odds added)."""

    key: str
    weight: int
    hubspot: str  # hs_analytics_source / hs_latest_source enumeration value
    salesforce: str  # LeadSource picklist value
    effect: float


#: The world's lead sources: referrals and partners convert best, purchased lists worst.
SOURCES: tuple[LeadSource, ...] = (
    LeadSource("organic_search", 22, "ORGANIC_SEARCH", "Web", 0.0),
    LeadSource("paid_search", 13, "PAID_SEARCH", "Paid Search", -0.3),
    LeadSource("paid_social", 8, "PAID_SOCIAL", "Social Media", -0.6),
    LeadSource("social_media", 5, "SOCIAL_MEDIA", "Social Media", -0.3),
    LeadSource("email_marketing", 9, "EMAIL_MARKETING", "Email", 0.0),
    LeadSource("direct_traffic", 10, "DIRECT_TRAFFIC", "Web", 0.2),
    LeadSource("referral", 7, "REFERRALS", "Customer Referral", 1.5),
    LeadSource("partner", 6, "REFERRALS", "Partner Referral", 1.3),
    LeadSource("event", 7, "OTHER_CAMPAIGNS", "Trade Show", 0.4),
    LeadSource("phone", 3, "OFFLINE", "Phone Inquiry", 0.6),
    LeadSource("purchased_list", 10, "OFFLINE", "Purchased List", -1.6),
)
SOURCE_BY_KEY: Mapping[str, LeadSource] = {s.key: s for s in SOURCES}
#: HubSpot's hs_analytics_source options, all of them (the world uses most).
HUBSPOT_SOURCES: tuple[str, ...] = (
    "ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS",
    "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL")

# -- the planted signal: log-odds of reaching opportunity ---------------------------------
#: log-odds of a person with no fit, engagement or source effect (about 3% buy).
INTERCEPT = -3.4
#: fit: title seniority (by exact world title; titles not listed: 0).
TITLE_EFFECTS: Mapping[str, float] = {
    "Chief Revenue Officer": 1.4, "Founder & CEO": 1.2, "VP of Marketing": 1.2,
    "VP Sales": 1.2, "Head of Revenue Operations": 1.1, "Director of Marketing": 0.8,
    "Director, Sales Operations": 0.8, "Marketing Operations Manager": 0.4,
    "Sales Operations Manager": 0.4, "Demand Generation Manager": 0.3,
    "Marketing Manager": 0.3, "Intern": -1.8, "Student": -2.0, "": -0.3,
}
#: fit: company size, (at least this many employees, effect), first match wins.
SIZE_EFFECTS: tuple[tuple[int, float], ...] = (
    (1000, 0.7), (200, 0.5), (50, 0.3), (10, 0.0), (0, -0.7))
#: fit: industry (industries not listed: 0). Not what the shipped model assumes (its
#: target industries include Healthcare and Telecommunications): every business buys
#: from other industries than the defaults say, which is what calibration is for, and
#: what the demo's learning step finds.
INDUSTRY_EFFECTS: Mapping[str, float] = {
    "Software": 0.5, "Manufacturing": 1.0, "Retail": 0.8, "Financial Services": 0.3,
    "Healthcare": -0.6, "Telecommunications": -0.8, "Education": -0.4, "Non-Profit": -0.6,
    "Government": -0.4}
#: fit: a personal (free-mail) address instead of a work one.
FREE_MAIL_EFFECT = -0.8
#: engagement: at least one hand-raise (demo request, contact sales, pricing request).
HAND_RAISE_EFFECT = 1.8
#: engagement: at least one pricing page view / webinar attended / content download.
PRICING_VIEW_EFFECT = 0.5
WEBINAR_EFFECT = 0.5
CONTENT_EFFECT = 0.3
#: engagement: per website visit (a day with page views), up to VISITS_CAP visits.
VISIT_EFFECT = 0.12
VISITS_CAP = 10
#: of the people who reach opportunity, the share who are customers by now.
CUSTOMER_SHARE = 0.35
#: the outcome comes 1..21 days after the person's last activity (at `now` at the latest),
#: so features that stood before the outcome are all the person's activities.
OUTCOME_DELAY_DAYS = (1, 21)

HAND_RAISE_TYPES = frozenset({ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES,
                              ActivityType.PRICING_REQUEST})
PAGE_VIEW_TYPES = frozenset({ActivityType.PAGE_VIEW, ActivityType.PRICING_PAGE_VIEW})
FREE_MAIL = frozenset({"gmail.com", "yahoo.com", "outlook.com", "hotmail.com"})


@dataclass(frozen=True, slots=True)
class PersonOutcome:
    """What the CRMs record about a person beyond their fields and activities.

    `visits` (days with page views) and `page_views` count the person's page-view
    activities in every channel (the website tracking sees them all); `stage` is
    "opportunity", "customer" or None, reached at `at`; `log_odds` is the planted value.
    """

    source: LeadSource
    latest_source: LeadSource
    visits: int
    page_views: int
    stage: str | None
    at: datetime | None
    log_odds: float


def log_odds(person: WorldPerson, kinds: Collection[ActivityType], visits: int) -> float:
    """The planted log-odds of `person` reaching opportunity (the constants above), given
    the kinds of activity they have and their visits."""
    value = INTERCEPT + TITLE_EFFECTS.get(person.title, 0.0)
    value += next(effect for least, effect in SIZE_EFFECTS if person.employees >= least)
    value += INDUSTRY_EFFECTS.get(person.industry, 0.0)
    if person.domain in FREE_MAIL:
        value += FREE_MAIL_EFFECT
    if not HAND_RAISE_TYPES.isdisjoint(kinds):
        value += HAND_RAISE_EFFECT
    if ActivityType.PRICING_PAGE_VIEW in kinds:
        value += PRICING_VIEW_EFFECT
    if ActivityType.WEBINAR_ATTENDANCE in kinds:
        value += WEBINAR_EFFECT
    if ActivityType.CONTENT_DOWNLOAD in kinds:
        value += CONTENT_EFFECT
    value += VISIT_EFFECT * min(visits, VISITS_CAP)
    return value + SOURCE_BY_KEY[person.source].effect


def outcome_of(person: WorldPerson, moments: Sequence[tuple[int, ActivityType]],
               rng: random.Random, now: datetime) -> PersonOutcome:
    """The person's outcome, drawn from `rng` (the person's own outcome stream, which the
    World hands out). `moments` are the person's activities as (seconds before `now`,
    type): the World has them before it makes datetimes, which is what keeps this cheap."""
    stamp = int(now.timestamp())
    views = [offset for offset, kind in moments if kind in PAGE_VIEW_TYPES]
    visits = len({(stamp - offset) // 86_400 for offset in views})  # UTC days
    source = SOURCE_BY_KEY[person.source]
    latest = source
    if views and rng.random() < 0.4:  # came back lately by another way
        latest = SOURCES[rng.randrange(len(SOURCES))]
    odds = log_odds(person, {kind for _, kind in moments}, visits)
    reached = rng.random() < 1.0 / (1.0 + math.exp(-odds))
    stage = at = None
    if reached:
        stage = "customer" if rng.random() < CUSTOMER_SHARE else "opportunity"
        last = (now - timedelta(seconds=min(offset for offset, _ in moments)) if moments
                else person.created_at)
        low, high = OUTCOME_DELAY_DAYS
        at = min(last + timedelta(days=low + (high - low) * rng.random()), now)
    return PersonOutcome(source, latest, visits, len(views), stage, at, odds)
