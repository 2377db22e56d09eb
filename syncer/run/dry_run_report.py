"""What `syncer sync --once --dry-run` would write, write by write, then in sum.

A dry run decides like a real run and stops before the CRM: its planned writes
(`RunSummary.planned`, one per field of each record update after the diff, the same
updates a real run pushes) and the people it would create (`creation.planned_creations`)
are listed here, so an admin can check a new model or config before anything is written.

Two forms: an aligned text table (CRM, record, field, old -> new, why) and a summary; or,
with `--json`, one JSON object per line (`"type"`: `write`, `create`, then one `summary`),
for scripts. JSON lines carry every value whole; the table cuts long values (a reasons
field holds up to 1,000 characters) to keep one write on one line.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from syncer.run.push import PlannedWrite

if TYPE_CHECKING:
    from syncer.run.pipeline import RunSummary

#: the widest a value or reason gets in the table before it is cut with "…"
VALUE_CHARS = 40
REASON_CHARS = 100
#: creations listed by person in the text summary (the rest are counted)
CREATIONS_SHOWN = 10
HEADERS = ("CRM", "RECORD", "FIELD", "OLD -> NEW", "WHY")


def ordered(planned: Sequence[PlannedWrite]) -> list[PlannedWrite]:
    """Writes by CRM, record and field: a record's changes together, stable across runs."""
    return sorted(planned, key=lambda w: (w.connector, w.record_id, w.field))


def cut(text: str | None, width: int) -> str:
    """A value as the table shows it: `-` for none, cut to `width` characters."""
    if text is None or text == "":
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def table_lines(planned: Sequence[PlannedWrite]) -> list[str]:
    """The aligned table, header first; no lines when nothing would be written. Who and
    why are on a record's first row only (every field of a record has the same)."""
    if not planned:
        return []
    rows: list[tuple[str, ...]] = []
    previous: tuple[str, str] | None = None
    for w in ordered(planned):
        first = (w.connector, w.record_id) != previous
        previous = (w.connector, w.record_id)
        why = cut(f"{w.person_key}: {w.reason}", REASON_CHARS) if first else ""
        rows.append((w.connector, w.record_id, w.field,
                     f"{cut(w.old, VALUE_CHARS)} -> {cut(w.new, VALUE_CHARS)}", why))
    widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(len(HEADERS) - 1)]
    return [("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
             + "  " + row[-1]).rstrip() for row in [HEADERS, *rows]]


def counts(planned: Sequence[PlannedWrite]) -> dict[str, dict[str, int]]:
    """{connector: {field: writes}}, fields sorted."""
    per: dict[str, Counter[str]] = {}
    for write in planned:
        per.setdefault(write.connector, Counter())[write.field] += 1
    return {name: dict(sorted(fields.items())) for name, fields in sorted(per.items())}


def summary_lines(planned: Sequence[PlannedWrite],
                  creations: Sequence[tuple[str, str]]) -> list[str]:
    """Writes per connector and field, records touched, and the people to be created."""
    records = Counter(name for name, _ in {(w.connector, w.record_id) for w in planned})
    lines = [f"dry run: would write {len(planned)} field{'s' if len(planned) != 1 else ''} "
             f"on {sum(records.values())} records; nothing was written"]
    for name, fields in counts(planned).items():
        lines.append(f"  {name}: {sum(fields.values())} fields on {records[name]} records: "
                     + ", ".join(f"{field} {n}" for field, n in fields.items()))
    per_crm: dict[str, list[str]] = {}
    for name, key in creations:
        per_crm.setdefault(name, []).append(key)
    for name, keys in sorted(per_crm.items()):
        shown = ", ".join(sorted(keys)[:CREATIONS_SHOWN])
        more = f" and {len(keys) - CREATIONS_SHOWN} more" if len(keys) > CREATIONS_SHOWN else ""
        lines.append(f"  would create {len(keys)} people in {name}: {shown}{more}")
    return lines


def text_lines(planned: Sequence[PlannedWrite],
               creations: Sequence[tuple[str, str]]) -> list[str]:
    """The table, a blank line, then the summary."""
    table = table_lines(planned)
    return [*table, *([""] if table else []), *summary_lines(planned, creations)]


def json_lines(planned: Sequence[PlannedWrite], creations: Sequence[tuple[str, str]],
               run: Mapping[str, object]) -> Iterator[str]:
    """One JSON object per write, per creation, then the summary (with `run`: run id,
    status...)."""
    for write in ordered(planned):
        yield json.dumps({"type": "write", "connector": write.connector,
                          "record_id": write.record_id, "person": write.person_key,
                          "field": write.field, "old": write.old, "new": write.new,
                          "reason": write.reason})
    for name, key in sorted(creations):
        yield json.dumps({"type": "create", "connector": name, "person": key})
    creates = Counter(name for name, _ in creations)
    yield json.dumps({"type": "summary", **run, "writes": counts(planned),
                      "records": len({(w.connector, w.record_id) for w in planned}),
                      "creates": dict(sorted(creates.items()))})


def report_lines(summary: RunSummary, as_json: bool) -> list[str]:
    """What `sync --once` prints after its run summary: a dry run's writes (table and
    summary, or JSON lines); with `--json`, a real run prints only the JSON summary (its
    writes are in the audit log: `syncer audit --run RUN`)."""
    planned = summary.planned if summary.dry_run else []
    creations = summary.creation.planned_creations if summary.dry_run else []
    if as_json:
        run = {"run_id": summary.run_id, "status": summary.status, "dry_run": summary.dry_run}
        return list(json_lines(planned, creations, run))
    return text_lines(planned, creations) if summary.dry_run else []
