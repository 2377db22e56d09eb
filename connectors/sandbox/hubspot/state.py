"""The contacts and owners of one sandbox HubSpot portal, generated from the synthetic World.

Contacts (people with `in_hubspot`) and owners (the world's sales users) are derived
deterministically from the world's seed, so a test can recompute what the sandbox should
hold: their analytics (source, visits, page views) and a lifecycle stage of opportunity or
customer come from the world's planted outcomes (connectors/sandbox/outcomes.py).
Nothing is materialised: a contact is generated from its person when asked for, and only
contacts changed since (by the API, by `edit` or by the simulated editor) are kept,
in an overlay. A portal of a million contacts costs memory only for what was written.
Contacts created through the API live in the overlay too, with ids after every generated
one; a contact merged away is `retired`: its id leads to the contact it was merged into
(`current_id`) but it is no longer listed, searched or written.
Writes go through `PortalState.apply`, under its lock: the server answers from several
threads at once.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from connectors.sandbox.hubspot.history import CALCULATED, Change, property_history
from connectors.sandbox.hubspot.http import iso_millis
from connectors.sandbox.hubspot.objects import company_id_for
from connectors.sandbox.hubspot.schema import (
    CONTACT_PROPERTIES,
    PROPERTY_GROUPS,
    SYNCER_PROPERTY_NAMES,
    PropertyDef,
    numemployees_range,
)
from connectors.sandbox.hubspot.validation import InputRejected, check_values
from connectors.sandbox.outcomes import PersonOutcome
from connectors.sandbox.world import IN_HUBSPOT, World, WorldPerson

#: Contact ids are numeric strings like HubSpot's; the world index is offset by this.
CONTACT_ID_BASE = 1001
OWNER_ID_BASE = 71_000_100
USER_ID_BASE = 9_100_400
#: generated emails end in ".<world index>@domain".
_EMAIL_INDEX = re.compile(r"\.(\d+)@[^@]+$")
#: (subscription type, contact id, changed values, change source) -> None
ChangeListener = Callable[[str, str, dict[str, str | None], str], None]


@dataclass(slots=True)
class Contact:
    id: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    #: recorded changes per property, newest first; a property never changed since the
    #: contact was seeded has none (its history is its value at createdAt, see
    #: sandbox_history.py).
    history: dict[str, list[Change]] = field(default_factory=dict)
    archived_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    id: str
    user_id: int
    email: str
    first_name: str
    last_name: str
    archived: bool
    created_at: datetime
    updated_at: datetime


def contact_id_for(index: int) -> str:
    """The contact id the sandbox gives the world person with this index."""
    return str(CONTACT_ID_BASE + index)


def seeded_company_id(world: World, person: WorldPerson) -> str | None:
    """The primary company a seeded contact has: its world company's, when the world
    seeds HubSpot companies and the person's email domain is that company's."""
    if not world.hubspot_companies or person.company_index < 0:
        return None
    if person.domain != world.company(person.company_index).domain:
        return None  # free mail or a competitor's address: no company link
    return company_id_for(person.company_index)


def millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _starting_stage(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:  # already with sales: scoring must leave these alone
        return rng.choice(("salesqualifiedlead", "opportunity", "customer"))
    return "lead" if roll < 0.45 else "subscriber"


class PortalState:
    """Contacts (lazy, with an overlay of changed ones) and owners of the sandbox portal."""

    def __init__(self, world: World, clock: Callable[[], datetime]) -> None:
        self.world = world
        self.lock = threading.RLock()
        self._clock = clock
        self.owners: list[OwnerRecord] = [self._owner(world, u.index, u.email, u.first_name,
                                                      u.last_name, not u.active)
                                          for u in world.users]
        #: contacts changed since generation or created, by id: the only ones held in memory.
        self.overlay: dict[str, Contact] = {}
        #: ids of contacts created through the API, in creation (= id) order.
        self.created_ids: list[str] = []
        #: contacts merged away, as they were when merged, by their old id.
        self.retired: dict[str, Contact] = {}
        #: merged-away id -> the id of the contact it went into (itself perhaps retired since).
        self.merged_into: dict[str, str] = {}
        #: contacts archived (deleted) through the API, by id, as they were then.
        self.archived: dict[str, Contact] = {}
        #: called with (subscription type, contact id, changed values, change source) after
        #: each change, under the lock: the webhook sender (connectors/sandbox/webhooks.py)
        self.listeners: list[ChangeListener] = []
        #: the portal's contact properties and property groups by name: HubSpot's own, plus
        #: syncer's unless the world starts without them (then `syncer setup` adds them
        #: through the properties API, sandbox_properties.py).
        self.properties: dict[str, PropertyDef] = {
            p.name: p for p in CONTACT_PROPERTIES if p.hubspot_defined or world.syncer_fields}
        self.groups: dict[str, str] = {
            name: label for name, label in PROPERTY_GROUPS
            if name != "syncer" or world.syncer_fields}

    @staticmethod
    def _owner(world: World, index: int, email: str, first: str, last: str,
               archived: bool) -> OwnerRecord:
        created = world.now - timedelta(days=700 - index * 13)
        updated = created + timedelta(days=120 if archived else 30)
        return OwnerRecord(str(OWNER_ID_BASE + index * 7), USER_ID_BASE + index, email, first,
                           last, archived, created, updated)

    def _generate(self, person: WorldPerson, outcome: PersonOutcome) -> Contact:
        """The contact as seeded, before any change: the analytics properties and the
        lifecycle stage of a planted outcome come from `outcome` (sandbox_outcomes)."""
        world = self.world
        rng = random.Random(f"hubspot-contact:{world.seed}:{person.index}")
        created = millis(person.created_at)
        age = (world.now - created).total_seconds()
        modified = millis(created + timedelta(seconds=age * rng.random() ** 0.5))
        owner = rng.choice(self.owners).id if rng.random() < 0.10 else None
        stage = _starting_stage(rng)
        if outcome.stage is not None:  # the world's planted outcome (sandbox_outcomes)
            stage = outcome.stage
        elif stage in ("opportunity", "customer"):
            stage = "salesqualifiedlead"  # only the planted outcome reaches opportunity
        cid = contact_id_for(person.index)
        properties: dict[str, str | None] = {
            "email": person.email, "firstname": person.first_name or None,
            "lastname": person.last_name or None, "jobtitle": person.title or None,
            "company": person.company or None, "industry": person.industry or None,
            "numemployees": numemployees_range(person.employees),
            "country": person.country or None, "lifecyclestage": stage,
            "hubspot_owner_id": owner, "hs_object_id": cid,
            "associatedcompanyid": seeded_company_id(world, person),
            "createdate": None, "lastmodifieddate": None,
            "hs_merged_object_ids": None, **dict.fromkeys(SYNCER_PROPERTY_NAMES),
            "hs_analytics_source": outcome.source.hubspot,
            "hs_latest_source": outcome.latest_source.hubspot,
            "hs_analytics_num_visits": str(outcome.visits),
            "hs_analytics_num_page_views": str(outcome.page_views),
            # the moment the outcome was reached (a customer passed opportunity then too)
            "hs_lifecyclestage_opportunity_date": iso_millis(outcome.at) if outcome.at
            else None,
            "hs_lifecyclestage_customer_date": iso_millis(outcome.at)
            if outcome.at and outcome.stage == "customer" else None,
        }
        contact = Contact(cid, properties, created, modified)
        self.stamp(contact)
        return contact

    # -- reading -----------------------------------------------------------------------
    def owner_ids(self, *, include_archived: bool) -> set[str]:
        return {o.id for o in self.owners if include_archived or not o.archived}

    def index_of(self, contact_id: str) -> int | None:
        """The world index of a contact id, or None if there is no such contact."""
        if not contact_id.isdigit():
            return None
        index = int(contact_id) - CONTACT_ID_BASE
        if not 0 <= index < self.world.size or not self.world.flags(index) & IN_HUBSPOT:
            return None
        return index

    def contact(self, contact_id: str) -> Contact | None:
        """The current contact (the overlay's, else freshly generated); None for an unknown
        or merged-away id. Callers must not mutate it; `snapshot` gives a copy."""
        with self.lock:
            changed = self.overlay.get(contact_id)
            if changed is None and (contact_id in self.retired
                                    or contact_id in self.archived):
                return None
        if changed is not None:
            return changed
        index = self.index_of(contact_id)
        if index is None:
            return None
        return self._generate(*self.world.person_and_outcome(index))

    def snapshot(self, contact_id: str) -> Contact | None:
        """A copy of one contact, safe to keep."""
        with self.lock:
            contact = self.contact(contact_id)
            if contact is None:
                return None
            return Contact(contact.id, dict(contact.properties), contact.created_at,
                           contact.updated_at,
                           {name: list(changes) for name, changes in contact.history.items()},
                           contact.archived_at)

    def iter_contacts(self, start_index: int = 0) -> Iterator[Contact]:
        """Every live contact from index `start_index` on, in id order, generated lazily;
        contacts created through the API come after the generated ones."""
        world = self.world
        for index in range(max(0, start_index), world.size):
            if world.flags(index) & IN_HUBSPOT:
                contact = self.contact(contact_id_for(index))
                if contact is not None:
                    yield contact
        first_created = contact_id_for(max(start_index, world.size))
        with self.lock:
            created = [c for c in self.created_ids if int(c) >= int(first_created)]
        for contact_id in created:
            made = self.contact(contact_id)
            if made is not None:
                yield made

    def current_id(self, contact_id: str) -> str | None:
        """The id a contact id answers as now: itself, or the contact it was merged into
        (following merges of merges); None when no contact ever had this id."""
        with self.lock:
            seen = {contact_id}
            while contact_id in self.merged_into:
                contact_id = self.merged_into[contact_id]
                if contact_id in seen:  # pragma: no cover - merge() refuses cycles
                    return None
                seen.add(contact_id)
        return contact_id if self.contact(contact_id) is not None else None

    def absorbed_ids(self, contact_id: str) -> list[str]:
        """Every id merged into this contact, directly or through earlier merges."""
        with self.lock:
            return sorted((old for old in self.merged_into
                           if old != contact_id and self._leads_to(old, contact_id)), key=int)

    def _leads_to(self, old: str, target: str) -> bool:
        while old in self.merged_into:
            old = self.merged_into[old]
            if old == target:
                return True
        return False

    def find(self, name: str, value: str) -> Contact | None:
        """The contact whose property `name` equals `value` (case-insensitive), lowest id.

        Email lookups are direct: generated emails carry the person index (x.y.42@z), so
        only the overlay and that one person are checked. Other properties scan lazily.
        """
        wanted = value.lower()

        def matches(contact: Contact) -> bool:
            return (contact.properties.get(name) or "").lower() == wanted
        with self.lock:
            changed = {c.id for c in self.overlay.values()}
            hits = [c for c in self.overlay.values() if matches(c)]
        if name != "email":
            first = next((c for c in self.iter_contacts()
                          if c.id not in changed and matches(c)), None)
            hits += [first] if first is not None else []
        else:
            found = _EMAIL_INDEX.search(wanted)
            candidate = (self.contact(contact_id_for(int(found.group(1)))) if found
                         else None)
            if candidate is not None and candidate.id not in changed and matches(candidate):
                hits.append(candidate)
        return min(hits, key=lambda c: int(c.id)) if hits else None

    # -- writing -----------------------------------------------------------------------
    def add(self, values: dict[str, str | None],
            created_at: datetime | None = None) -> Contact:
        """A new contact with checked values, a fresh id after every other, and create and
        modification times of now (or `created_at`)."""
        with self.lock:
            now = millis(self._clock().astimezone(timezone.utc))
            contact_id = contact_id_for(self.world.size + len(self.created_ids))
            properties: dict[str, str | None] = dict.fromkeys(
                self.properties, None)
            properties.update(values)
            properties["hs_object_id"] = contact_id
            contact = Contact(contact_id, properties, created_at or now, now)
            contact.history = {name: [Change(str(value), now, "API")]
                               for name, value in values.items()
                               if value not in (None, "") and name not in CALCULATED}
            self.stamp(contact)
            self.overlay[contact_id] = contact
            self.created_ids.append(contact_id)
            self.notify("contact.creation", contact_id, dict(values), "API")
            return contact

    def retire(self, contact_id: str, successor_id: str) -> None:
        """Take a contact out of the portal: its id now leads to `successor_id`."""
        with self.lock:
            contact = self.snapshot(contact_id)
            if contact is None:
                raise InputRejected("OBJECT_NOT_FOUND", "OBJECT_NOT_FOUND",
                                    f"No contact with id {contact_id}")
            self.overlay.pop(contact_id, None)
            self.retired[contact_id] = contact
            self.merged_into[contact_id] = successor_id
            self.notify("contact.merge", successor_id, {}, "CRM_UI")

    def check(self, values: dict[str, object]) -> dict[str, str | None]:
        """Validate property values as HubSpot does; return them as strings (raises
        InputRejected naming every bad property: connectors/sandbox/hubspot/validation.py)."""
        return check_values(self.properties, self.owner_ids(include_archived=False), values)

    def archive(self, contact_id: str) -> Contact:
        """Archive (delete) a live contact: it leaves lists and search, and is listed with
        `archived=true` from now on."""
        with self.lock:
            contact = self.snapshot(contact_id)
            if contact is None:
                raise InputRejected("OBJECT_NOT_FOUND", "OBJECT_NOT_FOUND",
                                    f"No contact with id {contact_id}")
            contact.archived_at = millis(self._clock().astimezone(timezone.utc))
            self.overlay.pop(contact_id, None)
            self.archived[contact_id] = contact
            return contact

    def archived_contacts(self) -> list[Contact]:
        """Archived contacts in id order."""
        with self.lock:
            return sorted(self.archived.values(), key=lambda c: int(c.id))

    def apply(self, contact_id: str, values: dict[str, str | None],
              source: str = "API") -> Contact:
        """Write checked values to one contact (kept in the overlay from now on), record
        each changed value in its history (`source`: HubSpot's sourceType) and bump its
        modification time."""
        with self.lock:
            contact = self.overlay.get(contact_id)
            if contact is None:
                base = self.snapshot(contact_id)
                if base is None:
                    raise InputRejected("OBJECT_NOT_FOUND", "OBJECT_NOT_FOUND",
                                        f"No contact with id {contact_id}")
                contact = self.overlay[contact_id] = base
            now = millis(self._clock().astimezone(timezone.utc))
            changed = {name: value for name, value in values.items()
                       if value != contact.properties.get(name)}
            for name, value in changed.items():
                earlier = property_history(contact, name)
                contact.history[name] = [Change(value or "", now, source), *earlier]
            contact.properties.update(values)
            self._touch(contact)
            self.notify("contact.propertyChange", contact_id, changed, source)
            return contact

    def notify(self, kind: str, contact_id: str, values: dict[str, str | None],
               source: str) -> None:
        """Tell the listeners (a webhook sender) what changed; never raises into a write."""
        for listener in list(self.listeners):
            listener(kind, contact_id, values, source)

    def restamp(self, contact_id: str, at: datetime) -> None:
        """Give a contact an explicit modification time, as a late commit or a restored
        backup would (the control API's edit with a `stamp`: the sweep's test)."""
        with self.lock:
            contact = self.overlay.get(contact_id)
            if contact is None:
                raise KeyError(contact_id)
            contact.updated_at = millis(at.astimezone(timezone.utc))
            self.stamp(contact)

    def _touch(self, contact: Contact) -> None:
        """Bump updatedAt to now, strictly later than before (1 ms resolution)."""
        now = millis(self._clock().astimezone(timezone.utc))
        contact.updated_at = max(now, contact.updated_at + timedelta(milliseconds=1))
        self.stamp(contact)

    @staticmethod
    def stamp(contact: Contact) -> None:
        """Mirror created_at/updated_at into createdate/lastmodifieddate."""
        contact.properties["createdate"] = iso_millis(contact.created_at)
        contact.properties["lastmodifieddate"] = iso_millis(contact.updated_at)

