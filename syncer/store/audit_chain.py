"""The audit log's hash chain: the canonical form a row's hash covers, and the walk that
checks a run of rows (from the database or an archive file) link by link.

Every row carries `prev_hash` (the hash of the row before it) and `row_hash`, the sha256 of
the row's canonical form together with `prev_hash`. The canonical form is the same since
schema 2, whatever the storage: the reasons list is in it as a list (schema 9 stores it
once in audit_reasons, and the rows read back carry it again), the time is UTC ISO-8601 to
the microsecond and the hashes are hex text. So rows written before schema 9, rows
archived before it and rows written after it all verify the same way, and an edited
reasons text breaks every row that cites it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

#: prev_hash of the very first row.
GENESIS = "0" * 64
#: Name of the one row in audit_chain (room for more chains later).
CHAIN = "audit"
#: The columns a row's hash covers, in the canonical form's order.
HASHED_FIELDS: tuple[str, ...] = (
    "id", "at", "run_id", "connector", "record_id", "person_key", "field", "old_value",
    "new_value", "outcome", "error", "reasons", "model_version")
#: verify stops collecting problems after this many (the first one is what matters).
MAX_PROBLEMS = 100


def id_of(row: Mapping[str, object]) -> int:
    """A row's id (an int, or its text in an archive file someone edited)."""
    value = row["id"]
    if isinstance(value, int):
        return value
    return int(str(value))


def time_of(row: Mapping[str, object]) -> datetime:
    """A row's time as aware UTC; a TypeError naming the row when it has none."""
    value = row.get("at")
    if not isinstance(value, datetime):
        raise TypeError(f"audit row {row.get('id')}: `at` is not a time ({value!r})")
    return as_utc(value)


def as_utc(value: datetime) -> datetime:
    """Aware UTC; SQLite hands back naive datetimes that are UTC by construction."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
        value.astimezone(timezone.utc)


#: where the reasons go in a canonical form built around their stored text: the key can
#: occur only once, as a key (JSON escapes every quote inside a value)
_REASONS_SLOT = '"reasons":null'


def canonical_form(row: Mapping[str, object], reasons_text: str | None = None) -> bytes:
    """The bytes a row's hash covers: its HASHED_FIELDS as sorted, compact JSON, with the
    time as UTC ISO-8601 to the microsecond, so SQLite and PostgreSQL agree.

    `reasons_text`, when given, is the row's reasons list already as canonical JSON
    (audit_reasons.canonical_reasons: the same sorted, compact encoding); it is spliced in
    instead of encoding the list again, which gives the same bytes."""
    data = {name: row.get(name) for name in HASHED_FIELDS}
    data["id"] = id_of(row)
    data["at"] = time_of(row).isoformat(timespec="microseconds")
    if reasons_text is not None:
        data["reasons"] = None
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    if reasons_text is not None:
        text = text.replace(_REASONS_SLOT, f'"reasons":{reasons_text}', 1)
    return text.encode("utf-8")


def row_hash(row: Mapping[str, object], prev_hash: str, reasons_text: str | None = None) -> str:
    """sha256 over the previous row's hash and this row's canonical form."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_form(row, reasons_text))
    return digest.hexdigest()


@dataclass(frozen=True)
class ChainHead:
    last_id: int
    head_hash: str


@dataclass(frozen=True)
class ChainProblem:
    """Where the chain breaks and how: edited, deleted, inserted, relinked or head."""

    row_id: int
    kind: str
    message: str


@dataclass
class VerifyReport:
    """What `verify` found. `ok` only when every row and the head check out."""

    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    head_hash: str = GENESIS
    anchor_id: int = 0
    archives_checked: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_break(self) -> ChainProblem | None:
        return self.problems[0] if self.problems else None


class ChainChecker:
    """Walks rows in id order from an anchor (the genesis or an archive cut) and records
    every place the chain breaks. Shared by verify and by the archive job."""

    def __init__(self, report: VerifyReport, after_id: int, prev_hash: str) -> None:
        self.report = report
        self.next_id = after_id + 1
        self.prev = prev_hash

    def problem(self, row_id: int, kind: str, message: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(ChainProblem(row_id, kind, message))
        else:
            self.report.more_problems += 1

    def feed(self, row: Mapping[str, object]) -> None:
        row_id = id_of(row)
        if row_id < self.next_id:
            self.problem(row_id, "inserted", f"row {row_id} lies at or before the archive cut "
                          f"(id {self.next_id - 1}); it was inserted afterwards")
        elif row_id > self.next_id:
            missing = (f"row {self.next_id} is" if row_id == self.next_id + 1
                       else f"rows {self.next_id}..{row_id - 1} are")
            self.problem(self.next_id, "deleted", f"{missing} missing (deleted)")
        elif row["prev_hash"] != self.prev:
            self.problem(row_id, "relinked", f"row {row_id} does not link to the row before "
                          "it: that row was rewritten with a new hash, or this row inserted")
        stored = row.get("row_hash")
        if not stored or row_hash(row, str(row.get("prev_hash") or "")) != stored:
            self.problem(row_id, "edited", f"row {row_id}: its content does not match its "
                          "hash (edited after it was written)")
        self.report.checked += 1
        if self.report.first_id is None:
            self.report.first_id = row_id
        self.report.last_id = row_id
        self.prev = str(stored or "")
        self.next_id = max(self.next_id, row_id + 1)

    def finish(self, head: ChainHead) -> None:
        last = self.next_id - 1
        if head.last_id > last:
            self.problem(last + 1, "deleted", f"rows {last + 1}..{head.last_id} at the end "
                          f"are missing (the chain head says the last row is {head.last_id})")
        elif head.last_id < last:
            self.problem(head.last_id + 1, "inserted", f"rows after {head.last_id} (the "
                          "recorded chain head) were not appended by syncer")
        elif head.head_hash != self.prev:
            self.problem(last, "head", f"row {last}'s hash differs from the recorded chain "
                          "head (the last row was rewritten)")
        self.report.head_hash = head.head_hash
