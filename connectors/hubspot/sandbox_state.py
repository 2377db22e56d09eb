"""The records of one sandbox HubSpot portal, built from the synthetic World.

Contacts (people with `in_hubspot`), owners (the world's sales users) and events (the
hubspot-channel activities) are derived deterministically from the world's seed, so a test
can recompute what the sandbox should hold. All access goes through `PortalState`'s methods,
which hold its lock: the HTTP server answers from several threads at once.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from connectors.hubspot.sandbox_http import iso_millis
from connectors.hubspot.sandbox_schema import (
    EVENT_ATTENDED_MARKETING_EVENT,
    EVENT_BOUNCED_EMAIL,
    EVENT_CLICKED_EMAIL,
    EVENT_OPENED_EMAIL,
    EVENT_REGISTERED_MARKETING_EVENT,
    EVENT_SUBMITTED_FORM,
    EVENT_UNSUBSCRIBED_EMAIL,
    EVENT_VISITED_PAGE,
    PAGE_TITLES,
    PROPERTY_BY_NAME,
    numemployees_range,
)
from connectors.sandbox_world import World, WorldActivity, WorldPerson
from syncer.domain import ActivityType

#: Contact ids are numeric strings like HubSpot's; the world index is offset by this.
CONTACT_ID_BASE = 1001
OWNER_ID_BASE = 71_000_100
USER_ID_BASE = 9_100_400
_ID_NAMESPACE = uuid.UUID("6f1c2d9e-3b7a-4f51-9a0e-2c5d8b7e4a10")
SITE = "https://www.syncer-sandbox.test"


class InputRejected(Exception):
    """One batch input (or edit) that HubSpot would refuse; `code` is the detailed reason."""

    def __init__(self, category: str, code: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.code = code
        self.message = message


@dataclass(slots=True)
class Contact:
    id: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime


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


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    event_type: str
    object_id: str
    occurred_at: datetime
    properties: dict[str, str] = field(default_factory=dict)


def contact_id_for(index: int) -> str:
    """The contact id the sandbox gives the world person with this index."""
    return str(CONTACT_ID_BASE + index)


def _millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _starting_stage(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:  # already with sales: scoring must leave these alone
        return rng.choice(("salesqualifiedlead", "opportunity", "customer"))
    return "lead" if roll < 0.45 else "subscriber"


def _event_properties(activity: WorldActivity) -> tuple[str, dict[str, str]]:
    """How HubSpot would record one world activity: event type name and its properties."""
    detail = activity.detail
    kind = activity.type
    if kind in (ActivityType.PAGE_VIEW, ActivityType.PRICING_PAGE_VIEW):
        url = detail.get("url", SITE + "/")
        path = url.removeprefix(SITE) or "/"
        return EVENT_VISITED_PAGE, {"hs_url": url, "hs_page_title": PAGE_TITLES.get(path, path)}
    email_events = {ActivityType.EMAIL_OPEN: EVENT_OPENED_EMAIL,
                    ActivityType.EMAIL_CLICK: EVENT_CLICKED_EMAIL,
                    ActivityType.EMAIL_BOUNCE: EVENT_BOUNCED_EMAIL,
                    ActivityType.UNSUBSCRIBE: EVENT_UNSUBSCRIBED_EMAIL}
    if kind in email_events:
        return email_events[kind], {"hs_email_name": detail.get("email", "")}
    if kind in (ActivityType.WEBINAR_REGISTRATION, ActivityType.WEBINAR_ATTENDANCE):
        name = (EVENT_REGISTERED_MARKETING_EVENT if kind is ActivityType.WEBINAR_REGISTRATION
                else EVENT_ATTENDED_MARKETING_EVENT)
        return name, {"hs_marketing_event_name": detail.get("campaign", ""),
                      "hs_marketing_event_type": "WEBINAR"}
    title = detail.get("form", "Contact us")
    properties = {"hs_form_title": title,
                  "hs_form_id": str(uuid.uuid5(_ID_NAMESPACE, "form:" + title)),
                  "hs_url": SITE + "/" + title.lower().replace(" ", "-")}
    if "asset" in detail:
        properties["hs_asset_title"] = detail["asset"]
    return EVENT_SUBMITTED_FORM, properties


class PortalState:
    """Contacts, owners and events of the sandbox portal, guarded by one lock."""

    def __init__(self, world: World, clock: Callable[[], datetime]) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self.owners: list[OwnerRecord] = [self._owner(world, u.index, u.email, u.first_name,
                                                      u.last_name, not u.active)
                                          for u in world.users]
        self.contacts: dict[str, Contact] = {}
        events: list[EventRecord] = []
        for person in world.people():
            if not person.in_hubspot:
                continue
            contact = self._contact(world, person)
            self.contacts[contact.id] = contact
            events.extend(self._events(world, person, contact.id))
        events.sort(key=lambda e: (e.occurred_at, e.id))
        self.events: list[EventRecord] = events
        #: contact ids in ascending numeric order (the order lists page in).
        self.contact_ids: list[str] = sorted(self.contacts, key=int)

    # -- building ----------------------------------------------------------------------
    @staticmethod
    def _owner(world: World, index: int, email: str, first: str, last: str,
               archived: bool) -> OwnerRecord:
        created = world.now - timedelta(days=700 - index * 13)
        updated = created + timedelta(days=120 if archived else 30)
        return OwnerRecord(str(OWNER_ID_BASE + index * 7), USER_ID_BASE + index, email, first,
                           last, archived, created, updated)

    def _contact(self, world: World, person: WorldPerson) -> Contact:
        rng = random.Random(f"hubspot-contact:{world.seed}:{person.index}")
        created = _millis(person.created_at)
        age = (world.now - created).total_seconds()
        modified = _millis(created + timedelta(seconds=age * rng.random() ** 0.5))
        owner = rng.choice(self.owners).id if rng.random() < 0.10 else None
        cid = contact_id_for(person.index)
        properties: dict[str, str | None] = {
            "email": person.email, "firstname": person.first_name or None,
            "lastname": person.last_name or None, "jobtitle": person.title or None,
            "company": person.company or None, "industry": person.industry or None,
            "numemployees": numemployees_range(person.employees),
            "country": person.country or None, "lifecyclestage": _starting_stage(rng),
            "hubspot_owner_id": owner, "hs_object_id": cid,
            "createdate": None, "lastmodifieddate": None,
            "syncer_score": None, "syncer_fit_grade": None, "syncer_reasons": None,
        }
        contact = Contact(cid, properties, created, modified)
        self._stamp(contact)
        return contact

    @staticmethod
    def _events(world: World, person: WorldPerson, contact_id: str) -> list[EventRecord]:
        made = []
        for k, activity in enumerate(person.activities):
            if activity.channel != "hubspot":
                continue
            event_type, properties = _event_properties(activity)
            event_id = str(uuid.uuid5(_ID_NAMESPACE, f"{world.seed}:{person.index}:{k}"))
            made.append(EventRecord(event_id, event_type, contact_id,
                                    _millis(activity.occurred_at), properties))
        return made

    # -- reading -----------------------------------------------------------------------
    def owner_ids(self, *, include_archived: bool) -> set[str]:
        return {o.id for o in self.owners if include_archived or not o.archived}

    def snapshot(self, contact_id: str) -> Contact | None:
        """A copy of one contact, safe to read outside the lock."""
        with self.lock:
            contact = self.contacts.get(contact_id)
            if contact is None:
                return None
            return Contact(contact.id, dict(contact.properties), contact.created_at,
                           contact.updated_at)

    # -- writing -----------------------------------------------------------------------
    def check(self, values: dict[str, object]) -> dict[str, str | None]:
        """Validate property values as HubSpot does; return them as strings.

        Raises InputRejected naming every bad property, so one write fails as a whole.
        """
        issues: list[dict[str, object]] = []
        clean: dict[str, str | None] = {}
        for name, raw in values.items():
            value = None if raw is None else str(raw)
            problem = self._problem(name, value)
            if problem is None:
                clean[name] = value
            else:
                code, text = problem
                issues.append({"isValid": False, "message": text, "error": code,
                               "name": name, "localizedErrorMessage": text})
        if issues:
            raise InputRejected("VALIDATION_ERROR", str(issues[0]["error"]),
                                "Property values were not valid: " + json.dumps(issues))
        return clean

    def _problem(self, name: str, value: str | None) -> tuple[str, str] | None:
        definition = PROPERTY_BY_NAME.get(name)
        if definition is None:
            return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
        if definition.read_only:
            return "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
        if value in (None, ""):
            return None  # clearing a value is always allowed
        assert value is not None
        if definition.owner_options:
            if value not in self.owner_ids(include_archived=False):
                return "INVALID_OWNER_ID", f"{value} is not a valid owner id"
        elif definition.type == "enumeration":
            allowed = [option for option, _ in definition.options]
            if value not in allowed:
                return ("INVALID_OPTION",
                        f"{value} was not one of the allowed options: {allowed}")
        elif definition.type == "number":
            try:
                float(value)
            except ValueError:
                return "INVALID_NUMBER", f"{value} was not a valid number."
        return None

    def apply(self, contact_id: str, values: dict[str, str | None]) -> Contact:
        """Write checked values to one contact and bump its modification time."""
        with self.lock:
            contact = self.contacts.get(contact_id)
            if contact is None:
                raise InputRejected("OBJECT_NOT_FOUND", "OBJECT_NOT_FOUND",
                                    f"No contact with id {contact_id}")
            contact.properties.update(values)
            self._touch(contact)
            return contact

    def _touch(self, contact: Contact) -> None:
        """Bump updatedAt to now, strictly later than before (1 ms resolution)."""
        now = _millis(self._clock().astimezone(timezone.utc))
        contact.updated_at = max(now, contact.updated_at + timedelta(milliseconds=1))
        self._stamp(contact)

    @staticmethod
    def _stamp(contact: Contact) -> None:
        contact.properties["createdate"] = iso_millis(contact.created_at)
        contact.properties["lastmodifieddate"] = iso_millis(contact.updated_at)
