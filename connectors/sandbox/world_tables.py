"""The vocabulary of the synthetic world (connectors/sandbox/world.py): names,
titles, industries, countries, the sales team, activity mixes and their weights, and the
limits every sandbox shares (how far back history goes, how many activities a person may
have). Plain data, so the world, its index and tests read it without generating anyone.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from typing import Generic, TypeVar

from syncer.domain.types import ActivityType

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


T = TypeVar("T")
#: How active a person is; the count of their activities scales with it.
ENGAGEMENT_LEVELS = (0, 1, 1, 2, 2, 3, 5, 8)
#: How many activities one person may have: the sandboxes number a person's activities
#: in 12 bits (connectors/sandbox/index.py); a world that could exceed it is refused.
MAX_ACTIVITIES_PER_PERSON = 4096


def most_activities(activity_scale: float) -> int:
    """The most activities one person can draw at this scale (engagement times a spread
    below 3, plus one hand-raise)."""
    return int(max(ENGAGEMENT_LEVELS) * 3.0 * activity_scale) + 1


#: Mean activities per person at activity_scale 1.0 (measured over 100,000 people).
BASE_MEAN_ACTIVITIES = 5.19


def activity_scale_for(mean: float) -> float:
    """The activity_scale that gives about `mean` activities per person (a linear fit of
    measured means: 5.19 at 1.0, 10.02 at 1.88)."""
    return max(0.0, (mean + 0.30) / 5.49)


class Weighted(Generic[T]):
    """A weighted choice drawing exactly as `rng.choices(values, weights)[0]` does."""

    __slots__ = ("_cumulative", "_hi", "_total", "values")

    def __init__(self, options: Sequence[tuple[T, int]]) -> None:
        self.values = tuple(value for value, _ in options)
        running, cumulative = 0, []
        for _, weight in options:
            running += weight
            cumulative.append(running)
        self._cumulative = cumulative
        self._total = cumulative[-1] + 0.0
        self._hi = len(cumulative) - 1

    def pick(self, rng: random.Random) -> T:
        return self.values[bisect_right(self._cumulative, rng.random() * self._total, 0,
                                        self._hi)]
