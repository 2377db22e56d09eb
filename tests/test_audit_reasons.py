"""Reasons stored once per distinct list (schema 9): cited by the field rows, still covered
by the hash chain, removed by the archive when no row cites them, and moved out of an
existing schema 8 state without changing a single hash."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, func, insert, inspect, select, text, update

from syncer.store import tables
from syncer.store.audit import GENESIS, row_hash
from syncer.store.audit_archive import archive_older_than, export, verify_with_archives
from syncer.store.audit_legacy import legacy_audit
from syncer.store.audit_reasons import audit_reasons
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from tests.conftest import NOW
from tests.legacy_audit import back_to_schema_8_audit


def reasons(person: int) -> list[dict[str, Any]]:
    return [{"rule_id": "fit.title", "points": 15.0, "detail": f"VP title +15 ({person})",
             "evidence_at": None},
            {"rule_id": "engagement.demo", "points": 40.0, "detail": "demo request +40",
             "evidence_at": "2026-11-02T10:00:00+00:00"}]


def field_rows(person: int, at: Any = NOW, fields: int = 4) -> list[dict[str, Any]]:
    """One decision's fields: every row cites the same reasons."""
    return [{"at": at, "run_id": "run1", "connector": "hubspot", "record_id": str(100 + person),
             "person_key": f"p{person}@example.com", "field": f"field{f}", "old_value": None,
             "new_value": str(f), "outcome": "written", "error": None,
             "model_version": "model@1", "reasons": reasons(person)} for f in range(fields)]


def count(store: Store, table: Any) -> int:
    with store.engine.connect() as db:
        return int(db.execute(select(func.count()).select_from(table)).scalar_one())


def test_each_decisions_reasons_are_stored_once_and_read_back_as_before(
        state_url: str) -> None:
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, field_rows(1) + field_rows(2))
        with store.transaction() as tx:  # the same decision again, and no reasons at all
            store.append_audit(tx, [*field_rows(1, fields=1),
                                    field_rows(3)[0] | {"reasons": []}])
        assert count(store, audit_reasons) == 3
        rows = store.audit_rows()
        assert [r["reasons"] for r in rows] == [reasons(1)] * 4 + [reasons(2)] * 4 + [
            reasons(1), []]
        assert "reasons_id" not in rows[0]
        assert store.audit_log.verify().ok
        with store.engine.connect() as db:
            cited = db.execute(select(tables.audit.c.reasons_id)).scalars().all()
        assert len(set(cited)) == 3
    finally:
        store.close()


def test_an_edited_reasons_text_breaks_every_row_that_cites_it(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, field_rows(1) + field_rows(2))
        engine = create_engine(state_url)
        with engine.begin() as db:
            target = db.execute(select(tables.audit.c.reasons_id)
                                .where(tables.audit.c.id == 5)).scalar_one()
            db.execute(update(audit_reasons).where(audit_reasons.c.id == target).values(
                reasons=json.dumps(reasons(2)).replace("+40", "+90")))
        engine.dispose()
        report = store.audit_log.verify()
        assert [(p.row_id, p.kind) for p in report.problems[:2]] == [(5, "edited"),
                                                                     (6, "edited")]
        assert {p.row_id for p in report.problems} == {5, 6, 7, 8}
    finally:
        store.close()


def test_archive_removes_the_reasons_no_remaining_row_cites(state_url: str,
                                                            tmp_path: Path) -> None:
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, field_rows(1, NOW) + field_rows(2, NOW))
        with store.transaction() as tx:  # person 2 decided alike later: their list stays
            store.append_audit(tx, field_rows(2, NOW + timedelta(days=2))
                               + field_rows(3, NOW + timedelta(days=2)))
        result = archive_older_than(store.audit_log, NOW + timedelta(days=1), tmp_path)
        assert result is not None and result.rows == 8
        with store.engine.connect() as db:
            kept = sorted(json.loads(t)[0]["detail"] for t in
                          db.execute(select(audit_reasons.c.reasons)).scalars())
        assert kept == ["VP title +15 (2)", "VP title +15 (3)"]
        with gzip.open(result.path, "rt", encoding="utf-8") as lines:
            archived = [json.loads(line) for line in lines]
        assert [r["reasons"] for r in archived] == [reasons(1)] * 4 + [reasons(2)] * 4
        assert verify_with_archives(store.audit_log).ok
        assert [r["reasons"] for r in store.audit_rows()] == [reasons(2)] * 4 + [
            reasons(3)] * 4
    finally:
        store.close()


def test_export_shows_the_reasons_as_before(sqlite_url: str) -> None:
    import io

    store = Store.open(sqlite_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, field_rows(1, fields=1))
        out = io.StringIO()
        export(store.audit_log, store_filter(), "jsonl", out)
        row = json.loads(out.getvalue())
        assert sorted(row) == ["at", "connector", "error", "field", "id", "model_version",
                               "new_value", "old_value", "outcome", "person_key",
                               "prev_hash", "reasons", "record_id", "row_hash", "run_id"]
        assert row["reasons"] == reasons(1)
        assert row["at"] == NOW.isoformat(timespec="microseconds")
        assert row["prev_hash"] == GENESIS and len(row["row_hash"]) == 64
    finally:
        store.close()


def store_filter() -> Any:
    from syncer.store.audit import AuditFilter

    return AuditFilter()


def test_a_schema_8_state_migrates_with_every_hash_unchanged(state_url: str,
                                                             tmp_path: Path) -> None:
    """Rows chained by schema 8 (reasons in each row) keep their hashes: rows anchored
    elsewhere or archived before the migration still verify, and new rows chain on."""
    Store.open(state_url).close()
    engine = create_engine(state_url)
    legacy = legacy_audit
    previous, chained = GENESIS, []
    for i, row in enumerate(field_rows(1) + field_rows(2) + field_rows(1, fields=2)):
        record = row | {"id": i + 1, "at": NOW + timedelta(minutes=i), "prev_hash": previous}
        previous = record["row_hash"] = row_hash(record, previous)
        chained.append(record)
    with engine.begin() as db:
        back_to_schema_8_audit(db)
        db.execute(insert(legacy), chained)
        db.execute(update(tables.audit_chain).values(last_id=len(chained), head_hash=previous))
        db.execute(delete(tables.schema_version))
        db.execute(insert(tables.schema_version).values(version=8, applied_at=NOW))
    engine.dispose()

    store = Store.open(state_url)  # migrates 8 -> LATEST
    try:
        with store.engine.connect() as db:
            assert db.execute(select(func.max(tables.schema_version.c.version))
                              ).scalar() == LATEST
            assert "reasons" not in {c["name"] for c in inspect(db).get_columns("audit")}
        assert count(store, audit_reasons) == 2
        rows = store.audit_rows()
        assert [r["row_hash"] for r in rows] == [r["row_hash"] for r in chained]
        assert [r["reasons"] for r in rows] == [r["reasons"] for r in chained]
        assert [r["at"] for r in rows] == [r["at"] for r in chained]
        assert store.audit_log.verify().ok
        # the rows archived now verify against the same cut hash the old rows had
        result = archive_older_than(store.audit_log, NOW + timedelta(minutes=4), tmp_path)
        assert result is not None and result.cut_hash == chained[3]["row_hash"]
        with store.transaction() as tx:
            store.append_audit(tx, field_rows(3))
        report = verify_with_archives(store.audit_log)
        assert report.ok and report.checked == len(chained) + 4
    finally:
        store.close()


def test_audit_filters_read_through_their_indexes(sqlite_url: str) -> None:
    """The filters `syncer audit`, explain's history and the web pages use find their rows
    through an index, not a scan of the audit table (schema 18: a person or record through
    the subjects it cites, a run or time through its stamps)."""
    from syncer.store.audit import AuditFilter

    store = Store.open(sqlite_url)
    try:
        with store.engine.connect() as db:
            for where, index in ((AuditFilter(person_key="a"), "ix_audit_subject"),
                                 (AuditFilter(person="a@example.com"), "ix_audit_subject"),
                                 (AuditFilter(run_id="r"), "ix_audit_stamp"),
                                 (AuditFilter(record_id="1"), "ix_audit_subject"),
                                 (AuditFilter(since=NOW, until=NOW + timedelta(hours=1)),
                                  "ix_audit_stamp")):
                query = select(tables.audit).where(store.audit_log.condition(db, where)) \
                    .order_by(tables.audit.c.id.desc()).limit(51)
                sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
                plan = " ".join(str(row[-1]) for row in db.execute(text(
                    "EXPLAIN QUERY PLAN " + sql)))
                assert index in plan, (where, plan)
            plan = " ".join(str(row[-1]) for row in db.execute(text(
                "EXPLAIN QUERY PLAN SELECT * FROM audit WHERE id < 100 AND id >= 1 "
                "ORDER BY id DESC LIMIT 51")))
            assert "INTEGER PRIMARY KEY" in plan, plan
    finally:
        store.close()


def test_the_canonical_form_built_around_stored_reasons_is_the_same_bytes() -> None:
    """Appends splice the reasons' stored text into the canonical form instead of encoding
    the list again per row: the same bytes, whatever the values hold."""
    from syncer.store.audit import canonical_form
    from syncer.store.audit_reasons import canonical_reasons

    tricky = ['"reasons":null', 'x\\"reasons\\":null', "Zoë \u2603", "back\\", None]
    for value in tricky:
        row = field_rows(1, fields=1)[0] | {"id": 7, "new_value": value, "old_value": value,
                                            "error": value, "person_key": str(value)}
        for listed in (reasons(1), [], [{"detail": '"reasons":null', "points": 1.5}]):
            row["reasons"] = listed
            assert canonical_form(row, canonical_reasons(listed)) == canonical_form(row)


def test_a_deleted_reasons_row_breaks_the_rows_that_cite_it(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, field_rows(1, fields=2) + field_rows(2, fields=2))
        with store.engine.begin() as db:
            db.execute(delete(audit_reasons).where(audit_reasons.c.id == select(
                tables.audit.c.reasons_id).where(tables.audit.c.id == 1).scalar_subquery()))
        report = store.audit_log.verify()
        assert [(p.row_id, p.kind) for p in report.problems] == [(1, "edited"), (2, "edited")]
        assert store.audit_rows()[0]["reasons"] == []
    finally:
        store.close()
