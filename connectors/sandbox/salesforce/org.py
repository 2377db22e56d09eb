"""The sandbox's org: stored and generated rows, the overlay of changed ones, and the
validation every write passes.

The small tables (users, the queue, campaigns) are stored; everything else comes from the
generated tables of sandbox_tables.py, and a generated row that is written is copied into
`overlay`, which wins from then on: memory grows with what was changed, not with the org.
Rows created since (API inserts, lead conversion) live in the overlay too, under id numbers
from CREATED_BASE on, far above any generated row's, so a table scan meets them last, in
the order they were created. A merged-away row stays with IsDeleted = true: `query` leaves
it out, `queryAll` shows it, and writes to it fail ENTITY_IS_DELETED.

Writes are split in two steps, `prepare` (validate, change nothing) and `apply`, so that an
allOrNone collection can check every record before touching any: a failure then rolls
back nothing because nothing was written. Errors mirror the real API's two levels: a body
the JSON deserializer rejects (unknown field, wrong JSON type) fails the whole request;
everything else is a per-record SaveResult error.
"""

from __future__ import annotations

import bisect
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from connectors.sandbox.salesforce.field_rules import (
    RecordRejected,
    SaveError,
    coerce,
    derive,
    field_of,
)
from connectors.sandbox.salesforce.rows import FieldValue, Row, text
from connectors.sandbox.salesforce.schema import (
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldSpec,
    ObjectSchema,
    id_number,
    is_valid_id,
    make_id,
    to_18,
    to_json,
)
from connectors.sandbox.salesforce.tables import ActivityTable, VirtualTable
from connectors.sandbox.salesforce.timeline import ActivityTimeline
from syncer.domain.json_values import JSONValue

#: generated rows kept after use (relationship lookups hit the same Accounts and Users).
RECENT_ROWS = 4096
#: the id number of the first created row of a table (no world is that large).
CREATED_BASE = 62 ** 8
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class StagedWrite:
    """A validated change to one row, not yet applied; `created`: a new row (an insert)."""

    schema: ObjectSchema
    row: Row
    changes: dict[str, FieldValue] = field(default_factory=dict)
    created: bool = False

    @property
    def record_id(self) -> str:
        return text(self.row, "Id")


class SalesforceOrg:
    """Stored rows (users, queues, campaigns), generated tables (everything from the
    world), an overlay of generated rows changed since, and row locks for tests.

    Generated rows are never mutated: a write copies the row into `overlay`, which wins
    over generation from then on. `changed` lists the changed id numbers per table, so
    scans know where the overlay must be consulted. Every method takes `lock`.
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Row]] = {}
        self._index: dict[str, tuple[ObjectSchema, Row]] = {}
        self._virtual: dict[str, VirtualTable] = {}
        self._by_prefix: dict[str, VirtualTable] = {}
        self.timelines: dict[str, ActivityTimeline] = {}
        #: generated rows changed since, by 18-char id (the only generated rows held).
        self.overlay: dict[str, Row] = {}
        self.changed: dict[str, set[int]] = {}
        #: (sObject, lower-case field) of custom fields the org does not have yet (syncer's,
        #: in a world without them): describe omits them, queries and writes refuse them
        #: until the Tooling API creates them (sandbox_tooling.py).
        self.absent: set[tuple[str, str]] = set()
        self._recent: OrderedDict[str, Row] = OrderedDict()
        #: record ids that answer UNABLE_TO_LOCK_ROW on write (fault injection).
        self.locked: set[str] = set()
        #: id numbers of created rows per table, ascending (their rows are in `overlay`).
        self.created: dict[str, list[int]] = {}
        #: ids handed out per table (an insert that fails or is rolled back burns its id).
        self._issued: dict[str, int] = {}
        #: how many rows of each table are deleted (query filters only where there are).
        self.deleted: dict[str, int] = {}
        #: the User the API signs in as: the default owner of what it creates.
        self.running_user = ""
        self.lock = threading.RLock()
        #: called with (sObject, record id, changed fields) after each write, under the
        #: lock: the outbound message sender (connectors/sandbox/outbound_messages.py)
        self.listeners: list[Callable[[str, str, dict[str, FieldValue]], None]] = []

    def insert(self, schema: ObjectSchema, row: Row) -> None:
        """Store a row (the small tables)."""
        derive(schema, row)
        record_id = text(row, "Id")
        self._tables.setdefault(schema.name, {})[record_id] = row
        self._index[record_id] = (schema, row)

    def attach(self, table: VirtualTable) -> None:
        """Serve `table`'s rows by generation."""
        self._virtual[table.schema.name] = table
        self._by_prefix[table.schema.key_prefix] = table
        self.changed[table.schema.name] = set()
        if isinstance(table, ActivityTable):
            self.timelines[table.schema.name] = ActivityTimeline(
                table, self.current, lambda: self.created_rows(table.schema.name))

    def created_rows(self, object_name: str) -> list[Row]:
        """The rows inserted into a generated table since the start, in id order."""
        with self.lock:
            prefix = self._virtual[object_name].schema.key_prefix
            return [self.overlay[make_id(prefix, number)]
                    for number in self.created.get(object_name, [])]

    def virtual(self, object_name: str) -> VirtualTable | None:
        return self._virtual.get(object_name)

    def rows(self, object_name: str) -> Iterator[Row]:
        """Every row of a type as it stands, in id order (generated ones one by one)."""
        table = self._virtual.get(object_name)
        if table is None:
            yield from list(self._tables.get(object_name, {}).values())
            return
        for number, cheap in self.scan(table):
            row = self.full(table, number, text(cheap, "Id"))
            if row is not None:
                yield row

    def scan(self, table: VirtualTable, after: int = 0) -> Iterator[tuple[int, Row]]:
        """The table's scan (see VirtualTable.scan), then its created rows, in id order.
        A created row comes whole (it is held anyway) and is listed in `changed`."""
        with self.lock:
            numbers = self.created.get(table.schema.name, [])
            pending = numbers[bisect.bisect_right(numbers, after):]
        if not pending:  # the usual case: the table's own scan, unwrapped
            return table.scan(after)
        prefix = table.schema.key_prefix
        created = ((number, self.overlay[make_id(prefix, number)]) for number in pending)
        return itertools.chain(table.scan(after), created)

    def new_row(self, schema: ObjectSchema, values: Mapping[str, FieldValue]) -> StagedWrite:
        """An insert of `values`, unchecked (validation is the caller's), with the next
        free id of the table and the org's defaults (owner, picklist defaults)."""
        with self.lock:
            issued = self._issued[schema.name] = self._issued.get(schema.name, 0) + 1
        number = CREATED_BASE + issued
        row: Row = {spec.name: spec.default for spec in schema.fields}
        row.update({"Id": make_id(schema.key_prefix, number), "IsDeleted": False})
        if schema.field("OwnerId") is not None:
            row["OwnerId"] = self.running_user
        if schema.field("IsConverted") is not None:
            row["IsConverted"] = False
        return StagedWrite(schema, row, dict(values), created=True)

    def has_deleted(self, object_name: str) -> bool:
        with self.lock:
            return self.deleted.get(object_name, 0) > 0

    def current(self, row: Row) -> Row:
        """A generated row as it stands now (its overlay copy if it was changed)."""
        with self.lock:
            return self.overlay.get(text(row, "Id"), row)

    def full(self, table: VirtualTable, number: int, record_id: str) -> Row | None:
        """The current row of a generated table, by number (generating it if unchanged;
        the last few thousand generated rows are kept)."""
        with self.lock:
            changed = self.overlay.get(record_id)
            if changed is not None:
                return changed
            row = self._recent.get(record_id)
            if row is not None:
                self._recent.move_to_end(record_id)
                return row
        row = table.generate(number)
        if row is None or row["Id"] != record_id:
            return None
        derive(table.schema, row)
        with self.lock:
            self._recent[record_id] = row
            while len(self._recent) > RECENT_ROWS:
                self._recent.popitem(last=False)
        return row

    def lookup(self, record_id: str) -> tuple[ObjectSchema, Row] | None:
        if not isinstance(record_id, str) or not is_valid_id(record_id):
            return None
        key = to_18(record_id)
        with self.lock:
            found = self._index.get(key)
        if found is not None:
            return found
        table = self._by_prefix.get(key[:3])
        number = id_number(key)
        if table is None or number is None:
            return None
        row = self.full(table, number, key)
        return None if row is None else (table.schema, row)

    def rendered(self, record_id: str) -> dict[str, object]:
        """Every field of one row as the API renders it, plus its type under "type"."""
        found = self.lookup(record_id)
        if found is None:
            raise KeyError(record_id)
        schema, row = found
        rendered: dict[str, object] = {"type": schema.name}
        for spec in schema.fields:
            if (schema.name, spec.name.lower()) not in self.absent:
                rendered[spec.name] = to_json(spec, row.get(spec.name))
        return rendered

    def field_of(self, schema: ObjectSchema, key: str) -> FieldSpec:
        """The field `key` names, if this org has it (see `absent`)."""
        return field_of(schema, key, self.absent)

    def has_field(self, object_name: str, name: str) -> bool:
        return (object_name, name.lower()) not in self.absent

    def prepare(self, schema: ObjectSchema, record_id: object, values: Mapping[str, JSONValue], *,
                check_lock: bool = True) -> StagedWrite:
        """Validate an update; raises RequestRejected or RecordRejected, changes nothing."""
        coerced = {spec.name: (spec, coerce(schema, spec, value))
                   for spec, value in ((self.field_of(schema, key), value)
                                       for key, value in values.items())}
        row = self._target(schema, record_id, check_lock)
        errors: list[SaveError] = []
        changes: dict[str, FieldValue] = {}
        for name, (spec, value) in coerced.items():
            if value == "" and spec.type in TEXT_TYPES:
                value = None  # stored as null, so a required field cannot be emptied
            error = self.check_field(schema, spec, value)
            if error is not None:
                errors.append(error)
            else:
                changes[name] = to_18(str(value)) if spec.type == "reference" and value else value
        if errors:
            raise RecordRejected(errors)
        return StagedWrite(schema, row, changes)

    def apply(self, staged: StagedWrite, now: datetime) -> Row:
        """Write a prepared change; a generated row is copied into the overlay first, a
        created one is added to it. Stamps are whole seconds: Salesforce keeps
        CreatedDate, LastModifiedDate and SystemModstamp to the second (.000)."""
        now = now.replace(microsecond=0)
        with self.lock:
            row = staged.row
            record_id = staged.record_id
            table = self._by_prefix.get(record_id[:3])
            if record_id not in self._index and table is not None:
                row = self.overlay.get(record_id) or dict(row)
                self.overlay[record_id] = row
                self.changed[table.schema.name].add(id_number(record_id) or 0)
                self._recent.pop(record_id, None)
                if staged.created:
                    bisect.insort(self.created.setdefault(table.schema.name, []),
                                  id_number(record_id) or 0)
            was_deleted = bool(row.get("IsDeleted"))
            row.update(staged.changes)
            if staged.created:
                row["CreatedDate"] = now
                row["CreatedById"] = self.running_user or None
            row["LastModifiedDate"] = now
            row["LastModifiedById"] = self.running_user or None
            row["SystemModstamp"] = now
            if bool(row.get("IsDeleted")) != was_deleted:
                name = staged.schema.name
                self.deleted[name] = self.deleted.get(name, 0) + (1 if row["IsDeleted"] else -1)
            derive(staged.schema, row)
            for listener in list(self.listeners):
                listener(staged.schema.name, record_id, dict(staged.changes))
            return row

    def restamp(self, record_id: str, at: datetime) -> None:
        """Give a changed record an explicit LastModifiedDate and SystemModstamp (whole
        seconds), as a late commit or a restored backup would: the sweep's test."""
        with self.lock:
            row = self.overlay.get(record_id)
            if row is None:
                raise KeyError(record_id)
            stamp = at.astimezone(timezone.utc).replace(microsecond=0)
            row["LastModifiedDate"] = stamp
            row["SystemModstamp"] = stamp

    def _target(self, schema: ObjectSchema, record_id: object, check_lock: bool) -> Row:
        if not record_id or not isinstance(record_id, str):
            raise RecordRejected([SaveError("MISSING_ARGUMENT",
                                            "Id not specified in an update call")])
        if not is_valid_id(record_id):
            raise RecordRejected([SaveError("MALFORMED_ID", f"malformed id {record_id}")])
        if record_id[:3] != schema.key_prefix:
            raise RecordRejected([SaveError(
                "MALFORMED_ID", f"{schema.name} ID: id value of incorrect type: {record_id}",
                ("Id",))])
        found = self.lookup(record_id)
        if found is None or found[1].get("IsDeleted"):
            raise RecordRejected([SaveError("ENTITY_IS_DELETED", "entity is deleted")])
        row = found[1]
        if check_lock and row["Id"] in self.locked:
            raise RecordRejected([SaveError(
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record or 1 records")])
        if row.get("IsConverted"):
            raise RecordRejected([SaveError("CANNOT_UPDATE_CONVERTED_LEAD",
                                            "cannot reference converted lead")])
        return row

    def check_field(self, schema: ObjectSchema, spec: FieldSpec, value: FieldValue, *,
                    creating: bool = False) -> SaveError | None:
        """The SaveError a value of this field gets, or None if it may be written."""
        fields = (spec.name,)
        if not (spec.createable if creating else spec.updateable):
            return SaveError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {spec.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile "
                "or permission set.", fields)
        if value is None:
            if spec.name == "OwnerId":
                return SaveError("INVALID_CROSS_REFERENCE_KEY",
                                 "Owner ID: owner cannot be blank", fields)
            if not spec.nillable:
                return SaveError("REQUIRED_FIELD_MISSING",
                                 f"Required fields are missing: [{spec.name}]", fields)
            return None
        if spec.type == "picklist" and spec.restricted and value not in spec.picklist:
            return SaveError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                             f"{spec.label}: bad value for restricted picklist field: {value}",
                             fields)
        if spec.type in TEXT_TYPES and isinstance(value, str) and spec.length and \
                len(value) > spec.length:
            return SaveError("STRING_TOO_LONG", f"{spec.label}: data value too large: "
                             f"{value[:40]} (max length={spec.length})", fields)
        if spec.type == "email" and not _EMAIL_RE.match(str(value)):
            return SaveError("INVALID_EMAIL_ADDRESS",
                             f"{spec.label}: invalid email address: {value}", fields)
        if spec.type in NUMBER_TYPES and spec.precision and isinstance(value, int | float) \
                and abs(value) >= 10 ** (spec.precision - spec.scale):
            return SaveError("NUMBER_OUTSIDE_VALID_RANGE", f"{spec.label}: value outside of "
                             f"valid range on numeric field: {value}", fields)
        if spec.type == "reference":
            return self._check_reference(schema, spec, str(value))
        return None

    def _check_reference(self, schema: ObjectSchema, spec: FieldSpec,
                         value: str) -> SaveError | None:
        fields = (spec.name,)
        if not is_valid_id(value):
            return SaveError("MALFORMED_ID", f"{spec.label}: id value of incorrect type: "
                             f"{value}", fields)
        found = self.lookup(value)
        if found is None or found[1].get("IsDeleted"):
            return SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                             fields)
        target_schema, target = found
        if target_schema.name not in spec.reference_to or (
                target_schema.name == "Group" and target.get("Type") != "Queue"):
            return SaveError("INVALID_CROSS_REFERENCE_KEY", f"{spec.label}: id value of "
                             f"incorrect type: {value}", fields)
        if target_schema.name == "User" and not target.get("IsActive"):
            return SaveError("INACTIVE_OWNER_OR_USER",
                             f"operation performed with inactive user [{target['Id']}] as "
                             f"owner of {schema.name.lower()}", fields)
        return None

