"""The generated sObject tables of the Salesforce sandbox: Lead, Contact, Account,
CampaignMember and Task, none of them held in memory.

A row's id encodes where it comes from (Lead and Contact: the world person; Account: the
company; CampaignMember and Task: the person and the activity's ordinal), so any row is
generated on demand from the seeder's row builders, and a table scans in id order from any
id on. `seed_org` stores the org's small tables and attaches these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import timedelta
from typing import Protocol

from connectors.sandbox.index import pack, unpack
from connectors.sandbox.salesforce.rows import FieldValue, Row
from connectors.sandbox.salesforce.schema import (
    ACCOUNT,
    CAMPAIGN_MEMBER,
    CONTACT,
    EVENT,
    LEAD,
    OPPORTUNITY,
    TASK,
    ObjectSchema,
    make_id,
)
from connectors.sandbox.salesforce.seed import MEMBER_KINDS, OrgSeeder, SeededOrg
from connectors.sandbox.world import IN_SALESFORCE, SALESFORCE_CONTACT, World
from syncer.domain.types import ActivityType


class VirtualTable(ABC):
    """One generated sObject table: rows by id number, and a scan in id order.

    `scan` yields (number, cheap) where `cheap` holds the fields known without generating
    the row (always Id); a query whose WHERE needs only those fields filters without
    generating anything, which is what makes counting a million rows affordable.
    """

    schema: ObjectSchema
    cheap_fields: frozenset[str] = frozenset({"Id", "IsDeleted"})

    def __init__(self, seeder: OrgSeeder) -> None:
        self.seeder = seeder
        self.world = seeder.world

    @abstractmethod
    def generate(self, number: int) -> Row | None:
        """The full row with this id number, or None when no such record exists."""

    @abstractmethod
    def scan(self, after: int = 0) -> Iterator[tuple[int, Row]]:
        """(number, cheap fields) of every record after `after`, in id order."""

    def _cheap(self, number: int, **extra: FieldValue) -> Row:
        return {"Id": make_id(self.schema.key_prefix, number), "IsDeleted": False, **extra}


class LeadTable(VirtualTable):
    """Leads: number i+1 for person i (a Lead person); size+i+1 for the converted Lead of
    Contact person i."""

    schema = LEAD
    cheap_fields = frozenset({"Id", "IsDeleted", "IsConverted"})

    def generate(self, number: int) -> Row | None:
        size, world = self.world.size, self.world
        if 1 <= number <= size:
            index = number - 1
            if world.flags(index) & (IN_SALESFORCE | SALESFORCE_CONTACT) != IN_SALESFORCE:
                return None
            return self.seeder.lead_row(*self.seeder.record_inputs(index))
        index = number - size - 1
        if not 0 <= index < size or not world.flags(index) & SALESFORCE_CONTACT \
                or not world.flags(index) & IN_SALESFORCE:
            return None
        draws = self.seeder.draws(index)
        if not draws.converted:
            return None
        return self.seeder.converted_lead_row(world.person(index, with_activities=False),
                                              draws)

    def scan(self, after: int = 0) -> Iterator[tuple[int, Row]]:
        size, world = self.world.size, self.world
        for index in range(max(0, after), size):
            if world.flags(index) & (IN_SALESFORCE | SALESFORCE_CONTACT) == IN_SALESFORCE:
                yield index + 1, self._cheap(index + 1, IsConverted=False)
        for index in range(max(0, after - size), size):
            flags = world.flags(index)
            if flags & IN_SALESFORCE and flags & SALESFORCE_CONTACT \
                    and self.seeder.has_converted_lead(index):
                yield size + index + 1, self._cheap(size + index + 1, IsConverted=True)


class ContactTable(VirtualTable):
    schema = CONTACT

    def generate(self, number: int) -> Row | None:
        index = number - 1
        wanted = IN_SALESFORCE | SALESFORCE_CONTACT
        if not 0 <= index < self.world.size or self.world.flags(index) & wanted != wanted:
            return None
        return self.seeder.contact_row(*self.seeder.record_inputs(index))

    def scan(self, after: int = 0) -> Iterator[tuple[int, Row]]:
        wanted = IN_SALESFORCE | SALESFORCE_CONTACT
        for index in range(max(0, after), self.world.size):
            if self.world.flags(index) & wanted == wanted:
                yield index + 1, self._cheap(index + 1)


class AccountTable(VirtualTable):
    """One Account per company of the world (number = company index + 1)."""

    schema = ACCOUNT

    def generate(self, number: int) -> Row | None:
        if not 1 <= number <= self.world.companies:
            return None
        return self.seeder.account_row(number - 1)

    def scan(self, after: int = 0) -> Iterator[tuple[int, Row]]:
        for number in range(max(1, after + 1), self.world.companies + 1):
            yield number, self._cheap(number)


class ActivityTable(VirtualTable):
    """CampaignMember or Task rows: number = pack(person index, activity ordinal) + 1."""

    def __init__(self, seeder: OrgSeeder, schema: ObjectSchema) -> None:
        super().__init__(seeder)
        self.schema = schema
        self.members = schema is CAMPAIGN_MEMBER
        self.kinds = frozenset(MEMBER_KINDS if self.members else
                               set(ActivityType) - MEMBER_KINDS)
        self.cheap_fields = frozenset({"Id", "IsDeleted", "CreatedDate",
                                       "ContactId" if self.members else "WhoId"})

    def generate(self, number: int) -> Row | None:
        if number < 1:
            return None
        index, ordinal = unpack(number - 1)
        if index >= self.world.size:
            return None
        for schema, _, row in self.seeder.activity_rows(index, {ordinal}):
            if schema is self.schema:
                return row
        return None

    def scan(self, after: int = 0) -> Iterator[tuple[int, Row]]:
        world, seeder = self.world, self.seeder
        start = unpack(max(0, after - 1))[0] if after else 0
        now = world.now
        for index in range(start, world.size):
            flags = world.flags(index)
            if not flags & IN_SALESFORCE:
                continue
            whom: str | None = None
            for ordinal, (offset, kind, channel, _) in enumerate(world.raw_activities(index)):
                number = pack(index, ordinal) + 1
                if channel != "salesforce" or kind not in self.kinds or number <= after:
                    continue
                if whom is None:
                    whom = seeder.record_id(index)
                extra: dict[str, FieldValue] = {"CreatedDate": now - timedelta(seconds=offset)}
                if self.members:
                    extra["ContactId"] = whom if flags & SALESFORCE_CONTACT else None
                else:
                    extra["WhoId"] = whom
                yield number, self._cheap(number, **extra)


class CreatedOnlyTable(VirtualTable):
    """A table the world seeds nothing into (Event, Opportunity): it holds only what is
    inserted through the API or the control API (the org keeps created rows)."""

    def __init__(self, seeder: OrgSeeder, schema: ObjectSchema) -> None:
        super().__init__(seeder)
        self.schema = schema

    def generate(self, number: int) -> Row | None:
        return None

    def scan(self, after: int = 0) -> Iterator[tuple[int, Row]]:
        return iter(())


class SeedableOrg(SeededOrg, Protocol):
    """What `seed_org` needs of the org (SalesforceOrg)."""

    running_user: str

    def attach(self, table: VirtualTable) -> None: ...


def seed_org(world: World, org: SeedableOrg) -> OrgSeeder:
    """Fill `org` from `world`; returns the seeder (its ids of the queue and users)."""
    seeder = OrgSeeder(world, org)
    seeder.seed()
    org.running_user = seeder.integration_user  # the user the API signs in as
    for table in (LeadTable(seeder), ContactTable(seeder), AccountTable(seeder),
                  ActivityTable(seeder, CAMPAIGN_MEMBER), ActivityTable(seeder, TASK),
                  CreatedOnlyTable(seeder, EVENT), CreatedOnlyTable(seeder, OPPORTUNITY)):
        org.attach(table)
    return seeder
