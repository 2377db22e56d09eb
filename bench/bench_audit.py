"""Benchmark of the hash-chained audit log: append, verify, query, export, archive.

    .venv/bin/python -m bench.bench_audit [--rows N] [--batch B] [--records R]
                                          [--postgres URL]

Appends N audit rows in transactions of B rows (a push of 200 records x 5 fields is 1,000
rows), then times `verify` over all of them, a query by person (indexed), a JSON Lines
export of everything and an archive of the older half. The baseline is a plain
executemany INSERT of the same rows without the chain (as stored since schema 18: the
references constant, no lookups), so the chain's and the references' cost is the
difference. Also reported: the audit table's bytes per row with its indexes (the
reasons, stored once per distinct list, apart).

Then the rows as a sync writes them (`decision_pushes`): for R records in pushes of 100,
ten fields a record, the push's write-ahead intent (one write_intents row, since schema 24)
and then its outcome rows with the intent closed, one stamp for the run, every row of a
record citing one reasons list object of about 1.2 KB (each record has a list and a long
value of its own); reported as rows a second and the CPU seconds of this process (on
PostgreSQL the server's are apart).

SQLite is a file in a temporary folder; PostgreSQL (when --postgres or
SYNCER_TEST_POSTGRES_URL is given) runs in a fresh schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from syncer.store import intents, tables
from syncer.store.audit import AuditFilter
from syncer.store.audit_archive import archive_older_than, export
from syncer.store.repository import Store

START = datetime(2026, 1, 1, tzinfo=UTC)


def rows(count: int) -> list[dict[str, Any]]:
    fields = ("lifecyclestage", "syncer_score", "syncer_fit_grade", "hubspot_owner_id",
              "syncer_reasons")
    return [{"at": START + timedelta(seconds=i), "run_id": f"run{i // 10_000:06d}",
             "connector": "hubspot" if i % 3 else "salesforce",
             "record_id": str(100_000 + i // 5), "person_key": f"p{i // 5}@example.com",
             "field": fields[i % 5], "old_value": None if i % 7 == 0 else str(i % 90),
             "new_value": str(i % 100), "outcome": "written", "error": None,
             "model_version": "example@3f2a9c",
             "reasons": [{"rule_id": "fit.seniority", "points": 15.0, "detail": "VP title +15",
                          "evidence_at": None},
                         {"rule_id": "engagement.demo_request", "points": 40.0,
                          "detail": "demo request 2026-11-02 +40",
                          "evidence_at": "2026-11-02T10:00:00+00:00"}]}
            for i in range(count)]


_FIELDS = ("score", "fit", "engagement", "grade", "stage", "routing_score", "routing_fit",
           "routing_engagement", "routing_grade", "reasons")


def decision_pushes(records: int, per_push: int = 100) -> list[list[dict[str, Any]]]:
    """Intent rows of each push of `per_push` records, as the writer builds them: a
    record's rows share one object each for its connector, record id, person key and
    reasons list; every row of the run one stamp; the `reasons` field's value is long
    (audit_texts)."""
    pushes = []
    for start in range(0, records, per_push):
        push = []
        for i in range(start, min(start + per_push, records)):
            reasons = [{"rule_id": f"fit.rule_{k}", "points": round(0.2 * k + i % 7, 1),
                        "detail": f"title 'Marketing Manager' contains 'manager' ({i})",
                        "evidence_at": None if k % 2 else "2026-10-05T07:12:03+00:00"}
                       for k in range(12)]
            connector = "hubspot" if i % 2 else "salesforce"
            record_id, person_key = f"r{i}", f"p{i}@example.com"
            for f, field in enumerate(_FIELDS):
                new = (f"LEAD {i % 90} (fit B): not MQL: score {i % 90} below 25 ({i})"
                       if field == "reasons" else str((i + f) % 100))
                push.append({"at": START, "run_id": "run-decisions", "connector": connector,
                             "record_id": record_id, "person_key": person_key,
                             "field": field, "old_value": None, "new_value": new,
                             "outcome": "intent", "error": None,
                             "model_version": "example@3f2a9c", "reasons": reasons})
        pushes.append(push)
    return pushes


def append_decisions(store: Store, pushes: list[list[dict[str, Any]]]) -> tuple[float, float]:
    """(wall, this process's CPU) seconds to announce each push's intent, then append its
    outcome rows and close the intent, each in its own transaction (as the writer does)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for push in pushes:
        with store.transaction() as tx:
            announced = intents.announce(tx, "run-decisions", push[0]["connector"], START,
                                         push)  # type: ignore[arg-type]
        with store.transaction() as tx:
            store.append_audit(tx, [{**row, "outcome": "written"} for row in push])
            intents.close(tx, announced)
    return time.perf_counter() - wall, time.process_time() - cpu


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


@contextmanager
def databases(postgres: str | None) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as folder:
        found = [("sqlite", f"sqlite:///{folder}/audit.db")]
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        engine = create_engine(postgres) if postgres else None
        if engine is not None and postgres is not None:
            with engine.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            separator = "&" if "?" in postgres else "?"
            found.append(("postgresql", f"{postgres}{separator}options=-csearch_path%3D{schema}"))
        try:
            yield found
        finally:
            if engine is not None:
                with engine.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()


def bench(url: str, data: list[dict[str, Any]], batch: int, folder: Path,
          pushes: list[list[dict[str, Any]]]) -> dict[str, float]:
    store = Store.open(url)
    try:
        plain = [{"id": i + 1_000_000_000, "stamp_id": 1, "subject_id": 1, "connector_id": 1,
                  "field_id": 1, "outcome_id": 1, "old_value": r["old_value"],
                  "new_value": r["new_value"], "old_text_id": None, "new_text_id": None,
                  "error": None, "prev_hash": None, "row_hash": None, "reasons_id": None}
                 for i, r in enumerate(data)]
        baseline, _ = timed(lambda: _plain_insert(store, plain, batch))
        with store.transaction() as tx:
            tx.execute(tables.audit.delete())

        def append() -> None:
            for start in range(0, len(data), batch):
                with store.transaction() as tx:
                    store.append_audit(tx, data[start:start + batch])
        appended, _ = timed(append)
        per_row = bytes_per_row(store, len(data))
        verified, report = timed(store.audit_log.verify)
        assert report.ok and report.checked == len(data)
        queried, found = timed(lambda: store.audit_rows(person="p4242@example.com"))
        assert len(found) == 5
        exported, count = timed(lambda: export(store.audit_log, AuditFilter(), "jsonl",
                                               io.StringIO()))
        assert count == len(data)
        cutoff = START + timedelta(seconds=len(data) // 2)
        archived, result = timed(lambda: archive_older_than(store.audit_log, cutoff, folder))
        assert result is not None and result.rows == len(data) // 2
        decided, decided_cpu = append_decisions(store, pushes)
        report = store.audit_log.verify()
        assert report.ok, report.first_break
        return {"baseline": baseline, "append": appended, "verify": verified,
                "query": queried, "export": exported, "archive": archived,
                "bytes_per_row": per_row, "decisions": decided, "decisions_cpu": decided_cpu}
    finally:
        store.close()


def bytes_per_row(store: Store, count: int) -> float:
    """Bytes of the audit table with its indexes per row (SQLite's dbstat; PostgreSQL's
    pg_total_relation_size), the reasons they cite apart."""
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            total = connection.execute(text(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema "
                "WHERE tbl_name = 'audit')")).scalar_one()
        else:
            total = connection.execute(text("SELECT pg_total_relation_size('audit')")
                                       ).scalar_one()
    return float(total) / count


def _plain_insert(store: Store, plain: list[dict[str, Any]], batch: int) -> None:
    for start in range(0, len(plain), batch):
        with store.transaction() as tx:
            tx.execute(tables.audit.insert(), plain[start:start + batch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--records", type=int, default=5_000,
                        help="records whose decision rows are appended as a sync does")
    parser.add_argument("--postgres", default=os.environ.get("SYNCER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    data = rows(args.rows)
    pushes = decision_pushes(args.records)
    # fields written (since schema 24 one audit row each; before it, two: intent, outcome)
    decision_rows = sum(len(push) for push in pushes)
    print(f"audit log, {args.rows:,} rows in transactions of {args.batch:,}; "
          f"Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"{'backend':<11} {'plain insert':>13} {'chained append':>15} {'verify':>10} "
          f"{'person query':>13} {'export jsonl':>13} {'archive half':>13} {'bytes/row':>10} "
          f"{'fields written':>14} {'their CPU':>10}")
    with databases(args.postgres) as found, tempfile.TemporaryDirectory() as archive:
        for name, url in found:
            t = bench(url, data, args.batch, Path(archive) / name, pushes)
            rate = {k: args.rows / t[k] for k in ("baseline", "append", "verify", "export")}
            print(f"{name:<11} {rate['baseline']:>8,.0f} r/s {rate['append']:>10,.0f} r/s "
                  f"{rate['verify']:>6,.0f} r/s {t['query'] * 1000:>10.1f} ms "
                  f"{rate['export']:>8,.0f} r/s {t['archive']:>11.2f} s "
                  f"{t['bytes_per_row']:>10,.0f} "
                  f"{decision_rows / t['decisions']:>10,.0f} f/s {t['decisions_cpu']:>8.2f} s")


if __name__ == "__main__":
    main()
