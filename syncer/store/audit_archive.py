"""Getting audit rows out: exports (CSV, JSON Lines) and the retention archive.

Retention never deletes silently: rows older than the cutoff are first written to a
gzip-compressed JSON Lines file, checked against the chain while they are written, and
only then removed, in the same transaction that records a manifest row (file, checksum,
id range and the chain hash at the cut). The rows left in the database verify from that
cut, and `verify_with_archives` re-checks the files too. The reasons lists only the
archived rows cited are removed with them (the file keeps each row's list inline), so a
state archived after every run stays the same size: SQLite reuses the freed pages for the
next rows.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from sqlalchemy import delete, func, select, union

from syncer.domain.json_values import as_object
from syncer.store import tables as t
from syncer.store.audit import (
    GENESIS,
    AuditError,
    AuditFilter,
    AuditLog,
    ChainChecker,
    ChainHead,
    VerifyReport,
    as_utc,
)
from syncer.store.audit_chain import time_of
from syncer.store.audit_reasons import forget_unreferenced
from syncer.store.audit_refs import forget_unreferenced_texts
from syncer.store.audit_storage import AuditRecord

EXPORT_FORMATS = ("csv", "jsonl")
CSV_COLUMNS: tuple[str, ...] = (
    "id", "at", "run_id", "connector", "record_id", "person_key", "field", "old_value",
    "new_value", "outcome", "error", "model_version", "reasons", "prev_hash", "row_hash")


def jsonable(row: AuditRecord) -> AuditRecord:
    """A row as plain JSON values (the time as UTC ISO-8601)."""
    return {**row, "at": time_of(row).isoformat(timespec="microseconds")}


def export(log: AuditLog, where: AuditFilter, fmt: str, stream: TextIO) -> int:
    """Write the matching rows to `stream` as CSV or JSON Lines; return how many."""
    if fmt not in EXPORT_FORMATS:
        raise AuditError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    count = 0
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, extrasaction="ignore") \
        if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for row in log.iter_rows(where):
        data = jsonable(row)
        if writer is not None:
            writer.writerow(data | {"reasons": json.dumps(data["reasons"], sort_keys=True)})
        else:
            stream.write(json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    first_id: int
    last_id: int
    rows: int
    cut_hash: str
    file_sha256: str
    cutoff: datetime


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_older_than(log: AuditLog, cutoff: datetime, folder: Path,
                       now: datetime | None = None) -> ArchiveResult | None:
    """Move the rows written before `cutoff` into a new archive file in `folder`.

    Only a prefix of the chain moves (up to the first row at or after the cutoff), so the
    rest still links to the manifest's cut hash. Appends wait while this runs. Returns None
    when nothing is old enough. Raises AuditError, archiving nothing, if those rows do not
    verify.
    """
    now = now or datetime.now(timezone.utc)
    cutoff = as_utc(cutoff)
    folder.mkdir(parents=True, exist_ok=True)
    with log.engine.begin() as connection:
        head = log.lock_head(connection)
        after_id, prev = log.anchor(connection)
        first_kept = connection.execute(select(func.min(t.audit.c.id)).where(
            log.condition(connection, AuditFilter(since=cutoff)),
            t.audit.c.id > after_id)).scalar()
        cut = int(first_kept) - 1 if first_kept is not None else head.last_id
        if cut <= after_id:
            return None
        path = folder / f"audit-{after_id + 1:012d}-{cut:012d}-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"
        report = VerifyReport()
        checker = ChainChecker(report, after_id, prev)
        try:
            with path.open("xb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
                    for row in log.ordered(connection, (t.audit.c.id > after_id)
                                            & (t.audit.c.id <= cut)):
                        checker.feed(row)
                        packed.write((json.dumps(jsonable(row), sort_keys=True,
                                                 ensure_ascii=False) + "\n").encode("utf-8"))
                raw.flush()
                os.fsync(raw.fileno())
            if checker.next_id - 1 != cut:
                checker.finish(ChainHead(cut, checker.prev))
            if not report.ok:
                broken = report.problems[0]
                raise AuditError(f"the audit chain is broken at row {broken.row_id} "
                                 f"({broken.message}); nothing was archived. Run `syncer audit "
                                 "verify` and investigate before archiving")
            file_sha = _sha256(path)
            connection.execute(t.audit_archives.insert(), [{
                "created_at": now, "cutoff": cutoff, "first_id": after_id + 1, "last_id": cut,
                "row_count": report.checked, "cut_hash": checker.prev,
                "path": str(path.resolve()), "file_sha256": file_sha}])
            archived = (t.audit.c.id > after_id) & (t.audit.c.id <= cut)
            cited = connection.execute(select(t.audit.c.reasons_id).distinct()
                                       .where(archived)).scalars().all()
            texts = connection.execute(union(
                select(t.audit.c.old_text_id).where(archived),
                select(t.audit.c.new_text_id).where(archived))).scalars().all()
            connection.execute(delete(t.audit).where(archived))
            forget_unreferenced(connection, (i for i in cited if i is not None))
            forget_unreferenced_texts(connection, texts)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return ArchiveResult(path.resolve(), after_id + 1, cut, report.checked, checker.prev,
                         file_sha, cutoff)


def apply_retention(log: AuditLog, retention_days: int, folder: Path,
                    now: datetime | None = None) -> ArchiveResult | None:
    """Archive rows older than `retention_days` (the `audit.retention_days` setting)."""
    now = now or datetime.now(timezone.utc)
    return archive_older_than(log, now - timedelta(days=retention_days), folder, now)


def read_archive(path: Path) -> Iterator[AuditRecord]:
    """The rows of an archive file, with times parsed back to datetimes."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row: AuditRecord = dict(as_object(json.loads(line), f"a row of {path}"))
                row["at"] = datetime.fromisoformat(str(row["at"]))
                yield row


def verify_with_archives(log: AuditLog) -> VerifyReport:
    """Verify the whole history: each archive file (present, unchanged, chained from the
    one before) and then the rows still in the database."""
    report = VerifyReport()
    checker = ChainChecker(report, 0, GENESIS)
    with log.engine.connect() as connection:
        manifests = connection.execute(select(t.audit_archives)
                                       .order_by(t.audit_archives.c.last_id)).all()
    for manifest in manifests:
        path = Path(manifest.path)
        problem = None
        if not path.exists():
            problem = f"archive file {path} is missing; restore it to check rows " \
                      f"{manifest.first_id}..{manifest.last_id}"
        elif _sha256(path) != manifest.file_sha256:
            problem = f"archive file {path} changed after it was written (checksum differs)"
        if problem is not None:
            checker.problem(manifest.first_id, "archive", problem)
        else:
            for row in read_archive(path):
                checker.feed(row)
            checker.finish(ChainHead(int(manifest.last_id), str(manifest.cut_hash)))
        checker.next_id, checker.prev = int(manifest.last_id) + 1, str(manifest.cut_hash)
        report.archives_checked += 1
    return log.verify(checker=checker, report=report)
