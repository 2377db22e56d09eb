"""Companies and deals of the sandbox portal: records of one object type each, held in
memory (a portal has far fewer of them than contacts, so nothing is generated lazily).

A `RecordStore` keeps one type's records, archived records, property definitions and
property groups. Writes are checked as HubSpot checks them (validation.py, the contacts'
rules over this type's properties) and stamp `hs_lastmodifieddate`, strictly later than
before, so an incremental pull on it sees every change. The HTTP handlers over a store
are connectors/sandbox/hubspot/objects_api.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from connectors.sandbox.hubspot.http import iso_millis
from connectors.sandbox.hubspot.object_schema import (
    COMPANY_ALWAYS,
    COMPANY_DEFAULT,
    COMPANY_GROUPS,
    COMPANY_PROPERTIES,
    COMPANY_QUERY,
    DEAL_ALWAYS,
    DEAL_DEFAULT,
    DEAL_GROUPS,
    DEAL_PROPERTIES,
    DEAL_QUERY,
    LOST_STAGE,
    WON_STAGE,
)
from connectors.sandbox.hubspot.schema import PropertyDef
from connectors.sandbox.hubspot.validation import InputRejected, check_values


def _deal_flags(properties: dict[str, str | None]) -> None:
    """hs_is_closed_won / hs_is_closed follow the stage, as HubSpot calculates them."""
    stage = properties.get("dealstage")
    properties["hs_is_closed_won"] = "true" if stage == WON_STAGE else "false"
    properties["hs_is_closed"] = "true" if stage in (WON_STAGE, LOST_STAGE) else "false"


def _no_calculation(properties: dict[str, str | None]) -> None:
    return None


@dataclass(frozen=True)
class ObjectKind:
    """One object type as the API names and shapes it."""

    name: str  # the path segment: companies, deals
    singular: str  # as error messages spell it: COMPANY, DEAL
    type_id: str  # HubSpot's object type id: 0-2, 0-3
    properties: tuple[PropertyDef, ...]
    groups: tuple[tuple[str, str], ...]
    always_returned: tuple[str, ...]
    default_returned: tuple[str, ...]
    query_properties: tuple[str, ...]
    first_id: int
    calculate: Callable[[dict[str, str | None]], None] = _no_calculation

    @property
    def aliases(self) -> frozenset[str]:
        return frozenset({self.name, self.name[:-1], self.type_id, self.singular})


COMPANIES = ObjectKind("companies", "COMPANY", "0-2", COMPANY_PROPERTIES, COMPANY_GROUPS,
                       COMPANY_ALWAYS, COMPANY_DEFAULT, COMPANY_QUERY, 30_000_000_001)
DEALS = ObjectKind("deals", "DEAL", "0-3", DEAL_PROPERTIES, DEAL_GROUPS, DEAL_ALWAYS,
                   DEAL_DEFAULT, DEAL_QUERY, 50_000_000_001, _deal_flags)
KINDS: tuple[ObjectKind, ...] = (COMPANIES, DEALS)


def company_id_for(company_index: int) -> str:
    """The id of the company the portal seeds for a world company (company_seed.py)."""
    return str(COMPANIES.first_id + company_index)


def kind_named(name: str) -> ObjectKind | None:
    """The object type a path segment names (companies, company, 0-2, COMPANY), or None."""
    return next((kind for kind in KINDS if name in kind.aliases or name.lower()
                 in kind.aliases), None)


@dataclass(slots=True)
class CrmRecord:
    """One company or deal: its id, property values (as text) and stamps."""

    id: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


def _millis(moment: datetime) -> datetime:
    utc = moment.astimezone(timezone.utc)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


class RecordStore:
    """The records of one object type in the portal (thread-safe: `lock`)."""

    def __init__(self, kind: ObjectKind, clock: Callable[[], datetime],
                 owner_ids: Callable[[], Set[str]]) -> None:
        self.kind = kind
        self.lock = threading.RLock()
        self._clock = clock
        self._owner_ids = owner_ids
        self._next_id = kind.first_id
        #: property definitions and groups: HubSpot's, plus any created through the API
        self.properties: dict[str, PropertyDef] = {p.name: p for p in kind.properties}
        self.groups: dict[str, str] = dict(kind.groups)
        self.records: dict[str, CrmRecord] = {}
        self.archived: dict[str, CrmRecord] = {}

    def now(self) -> datetime:
        return _millis(self._clock())

    # -- reading -----------------------------------------------------------------------
    def get(self, record_id: str) -> CrmRecord | None:
        """The live record with this id (None: unknown or archived)."""
        with self.lock:
            return self.records.get(record_id)

    def live(self) -> list[CrmRecord]:
        """Every live record in id order."""
        with self.lock:
            return sorted(self.records.values(), key=lambda r: int(r.id))

    def archived_records(self) -> list[CrmRecord]:
        with self.lock:
            return sorted(self.archived.values(), key=lambda r: int(r.id))

    def find(self, name: str, value: str) -> CrmRecord | None:
        """The live record whose property `name` equals `value` (case-insensitive)."""
        wanted = value.lower()
        return next((r for r in self.live()
                     if (r.properties.get(name) or "").lower() == wanted), None)

    # -- writing -----------------------------------------------------------------------
    def check(self, values: Mapping[str, object]) -> dict[str, str | None]:
        """Values as HubSpot accepts them (InputRejected naming every bad property)."""
        with self.lock:
            return check_values(self.properties, self._owner_ids(), values)

    def add(self, values: Mapping[str, str | None], created_at: datetime | None = None
            ) -> CrmRecord:
        """A new record with checked values, a fresh id and stamps of now."""
        with self.lock:
            now = self.now()
            record_id = str(self._next_id)
            self._next_id += 1
            properties: dict[str, str | None] = dict.fromkeys(self.properties)
            properties.update(values)
            properties["hs_object_id"] = record_id
            record = CrmRecord(record_id, properties, _millis(created_at or now), now)
            self._stamp(record)
            self.records[record_id] = record
            return record

    def seed(self, record_id: str, values: Mapping[str, str | None], created_at: datetime,
             updated_at: datetime) -> CrmRecord:
        """A record as the portal held it before the sandbox started (company_seed.py):
        an explicit id and stamps; later creates get ids after it."""
        with self.lock:
            properties: dict[str, str | None] = dict.fromkeys(self.properties)
            properties.update(values)
            properties["hs_object_id"] = record_id
            record = CrmRecord(record_id, properties, _millis(created_at), _millis(updated_at))
            self._stamp(record)
            self.records[record_id] = record
            self._next_id = max(self._next_id, int(record_id) + 1)
            return record

    def apply(self, record_id: str, values: Mapping[str, str | None]) -> CrmRecord:
        """Write checked values to a live record and bump its modification time."""
        with self.lock:
            record = self.records.get(record_id)
            if record is None:
                raise InputRejected("OBJECT_NOT_FOUND", "OBJECT_NOT_FOUND",
                                    f"No {self.kind.singular.lower()} with id {record_id}")
            record.properties.update(values)
            self.touch(record)
            return record

    def touch(self, record: CrmRecord, at: datetime | None = None) -> None:
        """A new modification time: `at`, or now but strictly later than before (1 ms)."""
        with self.lock:
            record.updated_at = (_millis(at) if at is not None else
                                 max(self.now(), record.updated_at + timedelta(milliseconds=1)))
            self._stamp(record)

    def archive(self, record_id: str) -> CrmRecord:
        """Archive (delete) a live record: gone from lists and search, listed with
        `archived=true` from now on."""
        with self.lock:
            record = self.records.pop(record_id, None)
            if record is None:
                raise InputRejected("OBJECT_NOT_FOUND", "OBJECT_NOT_FOUND",
                                    f"No {self.kind.singular.lower()} with id {record_id}")
            record.archived_at = self.now()
            self.archived[record_id] = record
            return record

    def _stamp(self, record: CrmRecord) -> None:
        record.properties["createdate"] = iso_millis(record.created_at)
        record.properties["hs_lastmodifieddate"] = iso_millis(record.updated_at)
        self.kind.calculate(record.properties)
