"""The audit trail: a hash chain that proves completeness, queries, exports and archives.

The chain is checked after real syncs (the real clients against both sandbox CRMs) on
SQLite and PostgreSQL, then broken by editing, deleting and inserting rows straight in
the database, as someone with database access would.
"""

from __future__ import annotations

import csv
import gzip
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, insert, inspect, select, text, update

from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.run.pipeline import RunSummary
from syncer.store import tables
from syncer.store.audit import GENESIS, AuditError, row_hash
from syncer.store.audit_archive import archive_older_than, read_archive, verify_with_archives
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from tests.conftest import NOW, sync_once
from tests.legacy_audit import back_to_schema_8_audit

LATER = NOW + timedelta(days=1)


def synthetic(i: int, at: datetime, person: str | None = None) -> dict[str, Any]:
    return {"at": at, "run_id": f"run{i // 10}", "connector": "hubspot",
            "record_id": str(1000 + i), "person_key": person or f"p{i}@example.com",
            "field": "syncer_score", "old_value": None, "new_value": str(i),
            "outcome": "written", "error": None, "model_version": "model@1",
            "reasons": [{"rule_id": "fit.title", "points": 15.0, "detail": "VP title +15",
                         "evidence_at": None}]}


def first_break(store: Store) -> tuple[int, str] | None:
    report = store.audit_log.verify()
    return (report.problems[0].row_id, report.problems[0].kind) if report.problems else None


# -- the chain after a real sync ------------------------------------------------------------
@pytest.mark.slow
def test_chain_verifies_after_a_sync_and_names_the_row_that_breaks_it(
        sandbox_config: LoadedConfig, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = sync_once(sandbox_config)
    written = sum(summary.fields_written.values())
    store = Store.open(state_url)
    engine = create_engine(state_url)
    audit = tables.audit
    try:
        rows = store.audit_rows()
        report = store.audit_log.verify()
        assert report.ok and report.checked == len(rows)
        assert sum(1 for r in rows if r["outcome"] == "written") == written > 50
        assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
        assert report.head_hash == rows[-1]["row_hash"]
        assert main(["audit", "verify", "--state", state_url]) == 0
        assert f"audit chain OK: {len(rows)} rows" in capsys.readouterr().out

        middle, last = rows[len(rows) // 2], rows[-1]
        # 1. An edited value.
        with engine.begin() as db:
            db.execute(update(audit).where(audit.c.id == middle["id"])
                       .values(new_value="tampered"))
        assert first_break(store) == (middle["id"], "edited")
        assert main(["audit", "verify", "--state", state_url]) == 1
        out = capsys.readouterr().out
        assert f"audit chain BROKEN at row {middle['id']} (edited)" in out
        with engine.begin() as db:
            db.execute(update(audit).where(audit.c.id == middle["id"])
                       .values(new_value=middle["new_value"]))
        assert first_break(store) is None

        # 2. An edit that also recomputes the row's own hash: the next row no longer links.
        forged = dict(middle, new_value="99")
        with engine.begin() as db:
            db.execute(update(audit).where(audit.c.id == middle["id"]).values(
                new_value="99", row_hash=row_hash(forged, middle["prev_hash"])))
        assert first_break(store) == (middle["id"] + 1, "relinked")
        with engine.begin() as db:
            db.execute(update(audit).where(audit.c.id == middle["id"]).values(
                new_value=middle["new_value"], row_hash=middle["row_hash"]))

        # 3. A deleted row in the middle, then the last row.
        for victim in (middle, last):
            with engine.begin() as db:
                stored = db.execute(select(audit).where(audit.c.id == victim["id"])).one()
                db.execute(delete(audit).where(audit.c.id == victim["id"]))
            assert first_break(store) == (victim["id"], "deleted")
            with engine.begin() as db:
                db.execute(insert(audit).values(**stored._asdict()))
            assert first_break(store) is None

        # 4. A row inserted after the head, hashed and linked like a real one (citing the
        # last row's reasons).
        extra = dict(last, id=last["id"] + 1, new_value="forged", prev_hash=last["row_hash"])
        extra["row_hash"] = row_hash(extra, last["row_hash"])
        with engine.begin() as db:  # stored as the last row is, with what differs
            stored = db.execute(select(audit).where(audit.c.id == last["id"])).one()
            db.execute(insert(audit).values(stored._asdict() | {
                "id": extra["id"], "new_value": "forged", "new_text_id": None,
                "prev_hash": extra["prev_hash"], "row_hash": extra["row_hash"]}))
        assert first_break(store) == (last["id"] + 1, "inserted")
    finally:
        store.close()
        engine.dispose()


# -- queries ------------------------------------------------------------------------------
@pytest.fixture
def two_runs(sandbox_config: LoadedConfig, state_url: str
             ) -> tuple[str, list[dict[str, Any]], list[RunSummary]]:
    """Two syncs a day apart (decay changes scores, so the second writes too)."""
    first = sync_once(sandbox_config, NOW)
    second = sync_once(sandbox_config, LATER)
    with Runtime(sandbox_config) as runtime:
        rows = runtime.require_store().audit_rows()
    assert {r["run_id"] for r in rows} == {first.run_id, second.run_id}
    return state_url, rows, [first, second]


def test_every_filter_returns_exactly_the_matching_rows(
        two_runs: tuple[str, list[dict[str, Any]], list[RunSummary]],
        capsys: pytest.CaptureFixture[str]) -> None:
    url, rows, (first, second) = two_runs
    connectors_of: dict[str, set[str]] = defaultdict(set)
    runs_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        connectors_of[row["person_key"]].add(row["connector"])
        runs_of[row["person_key"]].add(row["run_id"])
    # A person in both CRMs, written to in both runs, so every filter has something to cut.
    person = next(k for k, c in sorted(connectors_of.items())
                  if c == {"hubspot", "salesforce"} and "@" in k and len(runs_of[k]) == 2)
    hubspot_record = next(r["record_id"] for r in rows
                          if r["person_key"] == person and r["connector"] == "hubspot")
    cut = NOW + timedelta(hours=12)
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"person": person.upper()}, lambda r: r["person_key"] == person),
        ({"person": hubspot_record}, lambda r: r["person_key"] == person),
        ({"person_key": person}, lambda r: r["person_key"] == person),
        ({"record_id": hubspot_record}, lambda r: r["record_id"] == hubspot_record),
        ({"field": "syncer_score"}, lambda r: r["field"] == "syncer_score"),
        ({"run_id": second.run_id}, lambda r: r["run_id"] == second.run_id),
        ({"connector": "salesforce"}, lambda r: r["connector"] == "salesforce"),
        ({"outcome": "written"}, lambda r: r["outcome"] == "written"),
        ({"since": cut}, lambda r: r["at"] >= cut),
        ({"until": cut}, lambda r: r["at"] < cut),
        ({"since": LATER, "until": LATER + timedelta(seconds=1)}, lambda r: r["at"] == LATER),
        ({"connector": "hubspot", "field": "lifecyclestage", "run_id": first.run_id},
         lambda r: (r["connector"], r["field"], r["run_id"]) ==
         ("hubspot", "lifecyclestage", first.run_id)),
    ]
    store = Store.open(url)
    try:
        for filters, wanted in cases:
            expected = [r["id"] for r in rows if wanted(r)]
            assert expected, filters  # every case matches something, and not everything
            assert len(expected) < len(rows) or filters == {"outcome": "written"}, filters
            assert [r["id"] for r in store.audit_rows(**filters)] == expected, filters
        assert store.audit_rows(person="nobody@example.com") == []
        assert store.audit_rows(field="syncer_score", connector="nope") == []
    finally:
        store.close()
    capsys.readouterr()
    assert main(["audit", "--person", hubspot_record, "--since", cut.isoformat(),
                 "--state", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == sum(1 for r in rows if r["person_key"] == person and r["at"] >= cut)
    assert all(person not in line or "#" in line for line in lines)


def test_exports_hold_exactly_the_filtered_rows(
        two_runs: tuple[str, list[dict[str, Any]], list[RunSummary]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, rows, (first, _second) = two_runs
    expected = [r for r in rows if r["connector"] == "hubspot" and r["run_id"] == first.run_id]
    target = tmp_path / "audit.csv"
    assert main(["audit", "--connector", "hubspot", "--run", first.run_id, "--export", "csv",
                 "--output", str(target), "--state", url]) == 0
    assert f"exported {len(expected)} audit rows" in capsys.readouterr().err
    with target.open(newline="", encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in exported] == [r["id"] for r in expected]
    for got, row in zip(exported, expected, strict=True):
        assert (got["record_id"], got["field"], got["new_value"], got["row_hash"]) == \
            (row["record_id"], row["field"], row["new_value"] or "", row["row_hash"])
        assert json.loads(got["reasons"]) == row["reasons"]
        assert datetime.fromisoformat(got["at"]) == row["at"]

    assert main(["audit", "--field", "syncer_score", "--export", "jsonl", "--output", "-",
                 "--state", url]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    scores = [r for r in rows if r["field"] == "syncer_score"]
    assert [line["id"] for line in lines] == [r["id"] for r in scores]
    assert all(line["row_hash"] == row_hash({**line, "at": datetime.fromisoformat(line["at"])},
                                            line["prev_hash"]) for line in lines)


# -- archive and retention --------------------------------------------------------------
def test_archive_moves_old_rows_to_a_file_and_the_rest_still_verifies(
        state_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    folder = tmp_path / "archive"
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, [synthetic(i, base + timedelta(days=i)) for i in range(30)])
        original = store.audit_rows()

        result = archive_older_than(store.audit_log, base + timedelta(days=10), folder,
                                    now=base + timedelta(days=40))
        assert result is not None
        assert (result.first_id, result.last_id, result.rows) == (1, 10, 10)
        archived = list(read_archive(result.path))
        assert [(r["id"], r["new_value"], r["row_hash"], r["at"]) for r in archived] == \
            [(r["id"], r["new_value"], r["row_hash"], r["at"]) for r in original[:10]]
        assert [r["id"] for r in store.audit_rows()] == list(range(11, 31))
        report = store.audit_log.verify()
        assert report.ok and report.anchor_id == 10 and report.checked == 20
        # Nothing newer than the cutoff moves, and nothing at all when nothing is old.
        assert archive_older_than(store.audit_log, base + timedelta(days=5), folder) is None

        # Appends continue the chain after an archive; a second archive links to the first.
        with store.transaction() as tx:
            store.append_audit(tx, [synthetic(i, base + timedelta(days=i)) for i in (30, 31)])
        second = archive_older_than(store.audit_log, base + timedelta(days=20), folder)
        assert second is not None and (second.first_id, second.last_id) == (11, 20)
        full = verify_with_archives(store.audit_log)
        assert full.ok and full.archives_checked == 2 and full.checked == 32
        assert main(["audit", "verify", "--archives", "--state", state_url]) == 0
        assert "32 rows (rows 1..32) and 2 archive files" in capsys.readouterr().out

        # A changed archive file is caught; the rows in the database still verify alone.
        with gzip.open(result.path, "rt", encoding="utf-8") as handle:
            content = handle.read().replace('"new_value": "3"', '"new_value": "300"')
        with gzip.open(result.path, "wt", encoding="utf-8") as handle:
            handle.write(content)
        broken = verify_with_archives(store.audit_log)
        assert [(p.row_id, p.kind) for p in broken.problems] == [(1, "archive")]
        assert store.audit_log.verify().ok

        # Retention refuses to archive rows that do not verify, and archives nothing.
        files = sorted(folder.iterdir())
        engine = create_engine(state_url)
        with engine.begin() as db:
            db.execute(update(tables.audit).where(tables.audit.c.id == 25)
                       .values(old_value="edited"))
        engine.dispose()
        with pytest.raises(AuditError, match="broken at row 25"):
            archive_older_than(store.audit_log, base + timedelta(days=28), folder)
        assert sorted(folder.iterdir()) == files
        assert len(store.audit_rows()) == 12
    finally:
        store.close()


def test_archive_command_uses_retention_days(sqlite_url: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(timezone.utc)
    store = Store.open(sqlite_url)
    with store.transaction() as tx:
        store.append_audit(tx, [synthetic(i, now - timedelta(days=100 - i, hours=-12))
                                for i in range(100)])
    store.close()
    folder = tmp_path / "kept"
    assert main(["audit", "archive", "--older-than-days", "30", "--archive-path", str(folder),
                 "--state", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "archived 70 audit rows (ids 1..70" in out
    [archive] = folder.iterdir()
    assert len(list(read_archive(archive))) == 70
    assert main(["audit", "verify", "--archives", "--state", sqlite_url]) == 0


# -- appends from many writers -------------------------------------------------------------
def test_concurrent_appends_build_one_unbroken_chain(state_url: str) -> None:
    store = Store.open(state_url)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for batch in range(15):
                with store.transaction() as tx:
                    store.append_audit(tx, [synthetic(w * 100 + batch * 3 + k, NOW,
                                                      f"w{w}@example.com") for k in range(3)])
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    try:
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):  # verify sees a consistent chain meanwhile
            during = store.audit_log.verify()
            assert during.ok, during.problems[:3]
        for thread in threads:
            thread.join(timeout=120)
        assert not errors
        rows = store.audit_rows()
        assert [r["id"] for r in rows] == list(range(1, 4 * 15 * 3 + 1))
        for w in range(4):  # each transaction's rows stay together, in order
            mine = [r["id"] for r in rows if r["person_key"] == f"w{w}@example.com"]
            assert len(mine) == 45 and all(b - a == 1 for a, b in zip(mine[0::3], mine[1::3],
                                                                       strict=True))
        report = store.audit_log.verify()
        assert report.ok and report.checked == 180
    finally:
        store.close()


# -- databases created before the chain existed ------------------------------------------
def test_migration_seals_rows_written_before_the_chain(state_url: str) -> None:
    """A schema-1 database (no hash columns, no chain tables) is brought to the current
    schema: its rows are sealed into the chain and new rows chain after them."""
    store = Store.open(state_url)
    store.close()
    engine = create_engine(state_url)
    with engine.begin() as db:  # back to schema 1
        back_to_schema_8_audit(db)
        for index in ("ix_audit_at", "ix_audit_record", "ix_runs_started"):
            db.execute(text(f"DROP INDEX {index}"))
        for table, column in (("audit", "prev_hash"), ("audit", "row_hash"), ("runs", "error")):
            db.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        db.execute(text("DROP TABLE audit_chain"))
        db.execute(text("DROP TABLE audit_archives"))
        db.execute(text("DROP TABLE assignments"))  # schema 3's additions go too
        db.execute(text("DROP TABLE dead_letters"))
        db.execute(text("ALTER TABLE written DROP COLUMN origin"))
        db.execute(text("DROP INDEX ix_records_email"))  # and schema 4's
        db.execute(text("DROP INDEX ix_records_successor"))  # (indexed since schema 22)
        for table, column in (("records", "email"), ("records", "successor_id"),
                              ("records", "retired_cause"), ("records", "duplicate_of"),
                              ("decisions", "scores")):
            db.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        for name in ("stage_history", "model_publications", "shared_values"):
            db.execute(text(f"DROP TABLE {name}"))
        db.execute(delete(tables.schema_version))
        db.execute(insert(tables.schema_version).values(version=1, applied_at=NOW))
        legacy = [{k: v for k, v in synthetic(i, NOW).items()} | {"id": i + 1} for i in range(5)]
        db.execute(text(
            "INSERT INTO audit (id, at, run_id, connector, record_id, person_key, field, "
            "old_value, new_value, outcome, error, reasons, model_version) VALUES (:id, :at, "
            ":run_id, :connector, :record_id, :person_key, :field, :old_value, :new_value, "
            ":outcome, :error, :reasons, :model_version)"),
            [row | {"reasons": json.dumps(row["reasons"])} for row in legacy])
    engine.dispose()

    store = Store.open(state_url)
    try:
        with store.engine.connect() as db:
            assert db.execute(select(tables.schema_version.c.version)
                              .order_by(tables.schema_version.c.version.desc())).scalar() == LATEST
            assert {"assignments", "dead_letters"} <= set(inspect(db).get_table_names())
            assert "origin" in {c["name"] for c in inspect(db).get_columns("written")}
            assert {"stage_history", "model_publications", "shared_values"} <= set(
                inspect(db).get_table_names())
            assert "successor_id" in {c["name"] for c in inspect(db).get_columns("records")}
        rows = store.audit_rows()
        assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
        assert rows[0]["prev_hash"] == GENESIS and all(r["row_hash"] for r in rows)
        assert [r["new_value"] for r in rows] == ["0", "1", "2", "3", "4"]
        with store.transaction() as tx:
            store.append_audit(tx, [synthetic(9, NOW)])
        report = store.audit_log.verify()
        assert report.ok and report.checked == 6
        assert store.audit_rows()[-1]["prev_hash"] == rows[-1]["row_hash"]
    finally:
        store.close()

