"""A history file: one row per person with what was known about them and how it ended.

A CSV of any shape works: the first column is the person's id, every other column is a person field
(its name normalized: "Lead Source" -> lead_source), one column is the outcome and one,
optionally, the time that orders the rows (the split into a train and a test part follows
it: the model learns from the past and is judged on the future, never the other way).

Everything here fails with a `HistoryError` whose message names the column or the line and
says how to fix it, so the command line can print one line and exit 2.
"""

from __future__ import annotations

import csv
import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from syncer.domain.failures import BadInput

#: Tokens that mean "no value": CRM exports and web forms write all of these.
#: "select" is the untouched default of a form's drop-down (X Education writes it).
MISSING = frozenset({"", "select", "na", "n/a", "nan", "null", "none"})

_TRUE = frozenset({"1", "true", "yes", "won", "converted", "1.0"})
_FALSE = frozenset({"0", "false", "no", "lost", "not converted", "0.0"})

MAX_FIELD = 64
#: The scoring instant of every row when the time column holds no dates.
FIXED_INSTANT = datetime(2026, 1, 1, tzinfo=timezone.utc)


class HistoryError(BadInput, ValueError):
    """The history file or an option about it cannot be used; the message says the fix."""


def field_name(header: str) -> str:
    """The syncer field name of a column: lower case, runs of other characters -> "_".

    "Lead Source" -> lead_source, "TotalVisits" -> totalvisits. A name that would start
    with a digit gets "f_" in front (field names start with a letter); names are cut at
    64 characters, as the model language allows.
    """
    name = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    if not name:
        return ""
    name = name if name[0].isalpha() else f"f_{name}"
    return name[:MAX_FIELD].rstrip("_")


def is_missing(value: str) -> bool:
    return value.strip().lower() in MISSING


def as_number(value: str) -> float | None:
    """The value as a finite number, or None when it is not one."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_outcome(value: str, column: str, line: int) -> bool:
    token = value.strip().lower()
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    raise HistoryError(
        f"line {line}, column {column!r}: outcome {value!r} is not a known outcome. Fix: "
        "write 1/0, true/false, yes/no, won/lost or converted/not converted (or pick "
        "another column with --outcome)")


def parse_instant(value: str) -> datetime | None:
    """An ISO date or date-time (naive means UTC), or None when it is not one."""
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the file: its header, its field name and its cells (None: missing)."""

    header: str
    field: str
    cells: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class History:
    """A history file in time order (oldest first; ties keep the file's order).

    `ids`, `outcomes`, `times` (the sort keys), `instants` (the scoring instant of each
    row) and every column's cells share one index. `dated` says whether the time column
    holds dates (then per-week figures make sense). `as_of_header`: a column of ISO
    instants to score each row at, when that is not its time (the state store's history
    orders people by first contact but scores them as they stood before the outcome).
    """

    source: str
    id_header: str
    outcome_header: str
    time_header: str | None
    dated: bool
    ids: tuple[str, ...]
    outcomes: tuple[bool, ...]
    times: tuple[float, ...]
    instants: tuple[datetime, ...]
    columns: tuple[Column, ...]
    lines: tuple[int, ...]
    as_of_header: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> Column:
        """The column with this header or field name; HistoryError naming the ones there."""
        return find_column(self.columns, name)


def find_column(columns: Sequence[Column], name: str) -> Column:
    wanted = name.strip()
    for column in columns:
        if wanted in (column.header, column.field) or field_name(wanted) == column.field:
            return column
    headers = [c.header for c in columns]
    guess = difflib.get_close_matches(wanted, headers, n=1, cutoff=0.5)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    shown = ", ".join(repr(h) for h in headers[:40])
    raise HistoryError(f"column {name!r} is not in the file{hint}. Fix: use one of: {shown}")


def _read_table(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                rows.append(row)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise HistoryError(f"{path}: file not found. Fix: check the --history path") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HistoryError(f"{path}: cannot read it as a UTF-8 CSV file "
                           f"({exc.__class__.__name__}: {exc}). Fix: export it as CSV "
                           "(comma separated, UTF-8)") from None
    if header is None or not any(h.strip() for h in header):
        raise HistoryError(f"{path}: the file is empty. Fix: export the history with a header "
                           "line and one row per person")
    if not rows:
        raise HistoryError(f"{path}: the file has a header but no rows. Fix: export the "
                           "history with one row per person")
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(header):
            raise HistoryError(f"{path}, line {line}: {len(row)} cells but the header has "
                               f"{len(header)} columns. Fix: quote values that contain commas")
    return header, rows, lines


def _columns(header: list[str], rows: list[list[str]]) -> list[Column]:
    seen: dict[str, str] = {}
    columns: list[Column] = []
    for index, raw in enumerate(header):
        title = raw.strip() or f"column {index + 1}"
        name = field_name(title) or f"column_{index + 1}"
        if name in seen:
            raise HistoryError(f"columns {seen[name]!r} and {title!r} both become the field "
                               f"{name!r}. Fix: rename one of them in the header")
        seen[name] = title
        cells = tuple(None if is_missing(row[index]) else row[index].strip() for row in rows)
        columns.append(Column(title, name, cells))
    return columns


def _time_keys(column: Column, lines: list[int]) -> tuple[list[float], list[datetime] | None]:
    """Sort keys of the time column, and the instants when it holds dates."""
    values: list[str] = []
    for value, line in zip(column.cells, lines, strict=True):
        if value is None:
            raise HistoryError(f"line {line}, column {column.header!r}: no time. Fix: fill "
                               "the time of every row, or leave out --time (then the file "
                               "order is the time order)")
        values.append(value)
    numbers = [as_number(v) for v in values]
    if all(n is not None for n in numbers):
        return [n for n in numbers if n is not None], None
    instants: list[datetime] = []
    for value, line in zip(values, lines, strict=True):
        at = parse_instant(value)
        if at is None:
            raise HistoryError(f"line {line}, column {column.header!r}: {value!r} is neither "
                               "an ISO date (2026-03-31, 2026-03-31T09:30:00Z) nor a "
                               "number. Fix: write every time in one of those forms")
        instants.append(at)
    return [at.timestamp() for at in instants], instants


def read_history(path: str | Path, outcome: str, time: str | None = None,
                 as_of: str | None = None) -> History:
    """Read a history CSV; rows come back sorted by `time` (or in file order), scored at
    the instants of the `as_of` column if given, else of the time column.

    The first column is the id. Cells that are a MISSING token become None.
    """
    source = Path(path)
    header, rows, lines = _read_table(source)
    columns = _columns(header, rows)
    outcome_column = find_column(columns, outcome)
    time_column = find_column(columns, time) if time else None
    if outcome_column is columns[0]:
        raise HistoryError(f"--outcome {outcome!r} is the first column, which is the id. "
                           "Fix: name the outcome column, or put the id first")
    outcomes: list[bool] = []
    for value, line in zip(outcome_column.cells, lines, strict=True):
        if value is None:
            raise HistoryError(f"line {line}, column {outcome_column.header!r}: no outcome. "
                               "Fix: write 1 or 0 (won / lost) for every row, or drop the "
                               "rows whose outcome is not known yet")
        outcomes.append(parse_outcome(value, outcome_column.header, line))
    ids = [row[0].strip() or str(n) for n, row in enumerate(rows, start=1)]
    if time_column is None:
        keys, instants = [float(n) for n in range(len(rows))], None
    else:
        keys, instants = _time_keys(time_column, lines)
    order = sorted(range(len(rows)), key=keys.__getitem__)
    as_of_column = find_column(columns, as_of) if as_of else None
    if as_of_column is not None:
        instants = _time_keys(as_of_column, lines)[1]
        if instants is None:
            raise HistoryError(f"column {as_of_column.header!r} must hold ISO instants to "
                               "score the rows at. Fix: write ISO dates there")
    at = instants or [FIXED_INSTANT] * len(rows)
    return History(
        source=str(source), id_header=columns[0].header, outcome_header=outcome_column.header,
        time_header=time_column.header if time_column else None, dated=instants is not None,
        ids=tuple(ids[i] for i in order), outcomes=tuple(outcomes[i] for i in order),
        times=tuple(keys[i] for i in order), instants=tuple(at[i] for i in order),
        columns=tuple(Column(c.header, c.field, tuple(c.cells[i] for i in order))
                      for c in columns),
        lines=tuple(lines[i] for i in order),
        as_of_header=as_of_column.header if as_of_column else None)


@dataclass(frozen=True, slots=True)
class Split:
    """Row indices (in time order) of the train and the test part, and how they were cut."""

    train: tuple[int, ...]
    test: tuple[int, ...]
    description: str


def split_history(history: History, split_at: str | None = None,
                  test_fraction: float = 0.2) -> Split:
    """Train on the past, test on the future: rows before `split_at` (a time of the same
    kind as the time column) train, the rest test; else about the newest `test_fraction`
    (rows sharing a time stay on one side)."""
    n = len(history)
    if split_at is not None:
        cut_key = _split_key(history, split_at)
        cut = sum(1 for key in history.times if key < cut_key)
        what = f"{history.time_header} < {split_at}"
    else:
        if not 0 < test_fraction < 1:
            raise HistoryError(f"--test-fraction {test_fraction:g} must be between 0 and 1. "
                               "Fix: e.g. --test-fraction 0.2 (the newest 20% test)")
        cut = _at_time_boundary(history.times, n - max(1, round(n * test_fraction)))
        order = f"by {history.time_header}" if history.time_header else "in file order"
        what = f"newest {test_fraction:.0%} ({order}) test"
    if cut <= 0 or cut >= n:
        part = "train" if cut <= 0 else "test"
        raise HistoryError(f"the split leaves the {part} part empty ({what}, {n} rows). "
                           "Fix: choose a split point inside the file's time range")
    return Split(tuple(range(cut)), tuple(range(cut, n)), what)


def _at_time_boundary(times: Sequence[float], cut: int) -> int:
    """Move a cut off a run of equal times (people first seen the same day are all past
    or all future): back to the run's start, or past its end when the run starts the
    file."""
    start = cut
    while 0 < start < len(times) and times[start - 1] == times[start]:
        start -= 1
    if start > 0:
        return start
    while 0 < cut < len(times) and times[cut - 1] == times[cut]:
        cut += 1
    return cut


def _split_key(history: History, split_at: str) -> float:
    if history.time_header is None:
        raise HistoryError("--split-at needs --time (the column it compares with). Fix: add "
                           "--time COLUMN, or use --test-fraction")
    if history.dated:
        at = parse_instant(split_at)
        if at is None:
            raise HistoryError(f"--split-at {split_at!r}: the time column holds dates. Fix: "
                               "write an ISO date such as 2026-06-01")
        return at.timestamp()
    number = as_number(split_at)
    if number is None:
        raise HistoryError(f"--split-at {split_at!r}: the time column {history.time_header!r} "
                           "holds numbers. Fix: write a number, e.g. --split-at 640000")
    return number
