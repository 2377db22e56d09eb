"""What the synthetic world (connectors/sandbox/world.py) is made of: its users, people,
companies and activities, the placement bits of a person and the raw draws before they
become a person. Apart from the World so the activity index can use them without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from syncer.domain.types import ActivityType


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
    """One person. `activities` is empty when generated with `with_activities=False`;
    `company_index` identifies the company (its Account in Salesforce)."""

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
    company_index: int = -1
    #: how they found the company: a key of sandbox_outcomes.SOURCES
    source: str = "organic_search"


@dataclass(frozen=True, slots=True)
class WorldCompany:
    index: int
    name: str
    domain: str
    industry: str
    employees: int
    country: str


#: Placement bits of a person (World.flags).
IN_HUBSPOT = 1
IN_SALESFORCE = 2
SALESFORCE_CONTACT = 4

#: One activity before it becomes a WorldActivity: seconds before `now`, type, channel,
#: detail. The index works on these; they are cheaper than datetimes.
RawActivity = tuple[int, ActivityType, str, dict[str, str]]


class Drawn(NamedTuple):
    """Every value drawn for one person, before it becomes a WorldPerson."""

    first: str
    last: str
    company_index: int
    domain: str | None  # a free-mail or competitor domain instead of the company's
    flags: int
    created_offset: int  # seconds before now
    title: str
    activities: list[RawActivity]
