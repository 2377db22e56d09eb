"""Schema 18: audit rows cite their stamp, subject, names and long values (stored once each),
read back exactly as before, verify with every hash unchanged, and an older state migrates
to it and still verifies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, func, insert, inspect, select, text, update

from syncer.store import tables
from syncer.store.audit_archive import archive_older_than, verify_with_archives
from syncer.store.audit_migration import audit_v9
from syncer.store.audit_reasons import ReasonsInterner, canonical_reasons
from syncer.store.audit_refs import (
    LONG_VALUE,
    audit_names,
    audit_stamps,
    audit_subjects,
    audit_texts,
)
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from tests.conftest import NOW

LONG = "MQL 65 (fit B): score 65 >= 25, fit 33 >= 0; midmarket size +10; webinar +8"


def decision(person: int, run: str = "run1", at: Any = NOW, value: str = LONG
             ) -> list[dict[str, Any]]:
    """One decision's fields on one record, announced and then written."""
    listed = [{"rule_id": "fit.title", "points": 15.0, "detail": f"VP ({person})",
               "evidence_at": None}]
    return [{"at": at, "run_id": run, "connector": "hubspot", "record_id": str(100 + person),
             "person_key": f"p{person}@example.com", "field": field, "old_value": None,
             "new_value": new, "outcome": outcome, "error": None, "model_version": "m@1",
             "reasons": listed}
            for outcome in ("intent", "written")
            for field, new in (("syncer_reasons", f"{value} ({person})"), ("syncer_score", "65"))]


def count(store: Store, table: Any) -> int:
    with store.engine.connect() as db:
        return int(db.execute(select(func.count()).select_from(table)).scalar_one())


def test_rows_cite_what_they_share_and_read_back_as_given(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        given = decision(1) + decision(2)
        with store.transaction() as tx:
            store.append_audit(tx, given)
        with store.transaction() as tx:  # a later run: a new stamp, the same subjects
            store.append_audit(tx, decision(1, "run2", NOW + timedelta(hours=1)))
        rows = store.audit_rows()
        assert [{k: r[k] for k in given[0] if k != "at"} for r in rows[:8]] == \
            [{k: g[k] for k in given[0] if k != "at"} for g in given]
        assert all(r["at"] == NOW for r in rows[:8])
        assert store.audit_log.verify().ok
        assert count(store, audit_stamps) == 2 and count(store, audit_subjects) == 2
        # the long value of each person once, shared by its intent and outcome rows
        assert len(LONG) + 4 >= LONG_VALUE and count(store, audit_texts) == 2
        with store.engine.connect() as db:
            names = set(db.execute(select(audit_names.c.name)).scalars())
            inline = db.execute(select(tables.audit.c.new_value, tables.audit.c.new_text_id)
                                .order_by(tables.audit.c.id).limit(2)).all()
        assert {"intent", "written", "hubspot", "syncer_reasons", "syncer_score"} <= names
        assert inline[0] == (None, inline[0][1]) and inline[0][1] is not None
        assert inline[1] == ("65", None)
        assert [r["id"] for r in store.audit_rows(run_id="run2")] == [9, 10, 11, 12]
        assert len(store.audit_rows(person_key="p2@example.com")) == 4
        assert len(store.audit_rows(record_id="101", outcome="intent")) == 4
    finally:
        store.close()


def test_an_edited_long_value_breaks_every_row_that_cites_it(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, decision(1))
        with store.engine.begin() as db:
            db.execute(update(audit_texts).values(text="edited"))
        report = store.audit_log.verify()
        assert [(p.row_id, p.kind) for p in report.problems] == [(1, "edited"), (3, "edited")]
    finally:
        store.close()


def test_archive_removes_the_long_values_no_remaining_row_cites(state_url: str,
                                                                tmp_path: Path) -> None:
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, decision(1) + decision(2))
        later = NOW + timedelta(days=2)
        with store.transaction() as tx:  # person 2's value again, person 3's new
            store.append_audit(tx, decision(2, "run2", later) + decision(3, "run2", later))
        result = archive_older_than(store.audit_log, NOW + timedelta(days=1), tmp_path)
        assert result is not None and result.rows == 8
        with store.engine.connect() as db:
            kept = sorted(db.execute(select(audit_texts.c.text)).scalars())
        assert kept == [f"{LONG} (2)", f"{LONG} (3)"]
        assert verify_with_archives(store.audit_log).ok
        assert [r["new_value"] for r in store.audit_rows()][:2] == [f"{LONG} (2)", "65"]
    finally:
        store.close()


def back_to_schema_17(store: Store, rows: list[dict[str, Any]]) -> None:
    """Rewrite the audit table as schemas 9 to 17 had it (each row's text in the row, the
    reasons cited), with these rows read back from it, and stamp the state 17."""
    with store.engine.begin() as db:
        db.execute(text("DROP TABLE audit"))
        for table in (audit_stamps, audit_subjects, audit_names, audit_texts):
            db.execute(delete(table))
        audit_v9.create(db)
        db.execute(text("CREATE INDEX ix_audit_open_intents ON audit (run_id, connector) "
                        "WHERE outcome = 'intent'"))
        cited = ReasonsInterner(db).ids([(str(r["model_version"]),
                                          canonical_reasons(r["reasons"])) for r in rows])
        db.execute(insert(audit_v9), [
            {k: v for k, v in r.items() if k not in ("reasons", "model_version")}
            | {"reasons_id": reasons_id} for r, reasons_id in zip(rows, cited, strict=True)])
        db.execute(delete(tables.schema_version))
        db.execute(insert(tables.schema_version).values(version=17, applied_at=NOW))


def test_a_schema_17_state_migrates_with_every_hash_unchanged(state_url: str,
                                                              tmp_path: Path) -> None:
    store = Store.open(state_url)
    with store.transaction() as tx:
        store.append_audit(tx, decision(1) + decision(2))
    with store.transaction() as tx:
        store.append_audit(tx, decision(1, "run2", NOW + timedelta(hours=2)))
    before = store.audit_rows()
    back_to_schema_17(store, before)
    store.close()
    engine = create_engine(state_url)
    with engine.connect() as db:
        assert "run_id" in {c["name"] for c in inspect(db).get_columns("audit")}
    engine.dispose()

    store = Store.open(state_url)  # migrates 17 -> 18
    try:
        with store.engine.connect() as db:
            assert db.execute(select(func.max(tables.schema_version.c.version))
                              ).scalar() == LATEST
            columns = {c["name"] for c in inspect(db).get_columns("audit")}
            indexes = {ix["name"] for ix in inspect(db).get_indexes("audit")}
        assert "run_id" not in columns and "subject_id" in columns
        assert indexes == {"ix_audit_stamp", "ix_audit_subject"}  # schema 24 dropped the third
        assert store.audit_rows() == before
        assert store.audit_log.verify().ok
        result = archive_older_than(store.audit_log, NOW + timedelta(hours=1), tmp_path)
        assert result is not None and result.cut_hash == before[7]["row_hash"]
        with store.transaction() as tx:
            store.append_audit(tx, decision(3, "run3", NOW + timedelta(hours=3)))
        report = verify_with_archives(store.audit_log)
        assert report.ok and report.checked == len(before) + 4
    finally:
        store.close()
