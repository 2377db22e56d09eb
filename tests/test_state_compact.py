"""The compact state (schema 16): records, activities, decisions and written values read
back exactly as written, are stored packed on SQLite, and a schema 12 state migrates to it
without losing a value."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, delete, func, insert, select, text

from syncer.domain.types import (
    Activity,
    ActivityType,
    Decision,
    LedgerEntry,
    Person,
    Reason,
    ScoreCard,
    Stage,
)
from syncer.store import compact_state, tables
from syncer.store.compact_json import DEFLATE_1, RAW, pack, unpack
from syncer.store.compact_state import PACKED_TABLES, _legacy
from syncer.store.migrations import LATEST
from syncer.store.repository import Store, WrittenRow
from tests.conftest import NOW


def person(i: int) -> Person:
    return Person(source="hubspot", record_id=str(100 + i), object_type="contact",
                  email=f"p{i}@example.com", first_name="Ada", last_name=f"Lovelace {i}",
                  title="VP Marketing", company="Acme", industry="software", employees=250,
                  country="DE", updated_at=NOW - timedelta(days=i),
                  crm_values={"lifecyclestage": "lead", "hs_lead_status": None,
                              "lead_score": str(40 + i)},
                  properties={"lead_source": "webinar", "visits": 3, "opted_in": True})


def activity(i: int) -> Activity:
    return Activity(source="hubspot", source_id=f"a{i}", record_id=str(100 + i),
                    type=ActivityType.FORM_FILL, occurred_at=NOW - timedelta(hours=i),
                    attributes={"form_id": "demo", "url": "https://example.com/demo ü"})


def decision(i: int) -> Decision:
    ledger = tuple(LedgerEntry(f"engagement.visit{n}", 2.5 * n, f"page view {n} ×0.8",
                               f"a{n}", NOW - timedelta(minutes=n), 0.8) for n in range(30))
    card = ScoreCard("primary", 35.0, 42.5, 77, "A", (*ledger, LedgerEntry("fit.title", 15.0)))
    return Decision(key=f"p{i}@example.com", score=77, fit_points=35.0,
                    engagement_points=42.5, fit_grade="A", stage=Stage.MQL,
                    owner_email="rep@example.com",
                    reasons=(Reason("fit.title", 15.0, "VP title +15", None),
                             Reason("engagement.demo", 40.0, "demo +40", NOW)),
                    model_version="model@1", scores=(card,))


def written(i: int) -> WrittenRow:
    return {"connector": "hubspot", "record_id": str(100 + i), "field": "lead_score",
            "value": str(40 + i), "written_at": NOW - timedelta(seconds=i), "run_id": "run1"}


def save_all(store: Store, people: range) -> None:
    with store.transaction() as tx:
        store.save_records(tx, [person(i) for i in people],
                           [f"p{i}@example.com" for i in people], NOW)
        store.save_activities(tx, [activity(i) for i in people])
        store.save_decisions(tx, [decision(i) for i in people], NOW)
        store.record_write(tx, [written(i) for i in people])


def assert_reads_back(store: Store, people: range) -> None:
    keys = [f"p{i}@example.com" for i in people]
    assert store.decisions(keys) == {d.key: d for d in (decision(i) for i in people)}
    loaded = store.load_people(keys)
    for i, key in zip(people, keys, strict=True):
        records, acts = loaded[key]
        expected = person(i)
        assert records == [replace(expected, crm_values={
            **expected.crm_values, "lead_score": str(40 + i)})]
        assert acts == [activity(i)]
    assert store.written_values("hubspot", [str(100 + i) for i in people]) == {
        (str(100 + i), "lead_score"): str(40 + i) for i in people}
    assert store.unchanged("hubspot", [person(i) for i in people]) == {
        str(100 + i) for i in people}


def test_values_read_back_exactly_as_written(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        save_all(store, range(3))
        assert_reads_back(store, range(3))
    finally:
        store.close()


def test_sqlite_keeps_json_packed_times_as_integers_and_written_without_rowid(
        sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        save_all(store, range(2))
    finally:
        store.close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        kinds = db.execute("SELECT typeof(fields), typeof(crm_values), typeof(pulled_at), "
                           "typeof(updated_at) FROM records").fetchall()
        assert set(kinds) == {("blob", "blob", "integer", "integer")}
        assert db.execute("SELECT typeof(scores), typeof(reasons), typeof(decided_at), "
                          "substr(scores, 1, 1) FROM decisions").fetchall()[0] == (
            "blob", "blob", "integer", bytes((DEFLATE_1,)))
        assert db.execute("SELECT typeof(attributes), typeof(occurred_at) FROM activities"
                          ).fetchall()[0] == ("blob", "integer")
        schema = db.execute("SELECT sql FROM sqlite_schema WHERE name = 'written'").fetchone()
        assert "WITHOUT ROWID" in schema[0]
        assert db.execute("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' "
                          "AND tbl_name = 'written'").fetchone()[0] == 0


def test_pack_round_trips_and_reads_the_older_text_form() -> None:
    for value in ({}, [], {"a": None}, [1, 2.5, "ü", True], decision(1).model_version,
                  {"ledger": [["engagement.visit", 2.5, "page view", None, None, 1.0]] * 40}):
        packed = pack(value)
        assert unpack(packed) == value
    assert pack({})[0] == RAW
    assert unpack('{"old": ["text", 1]}') == {"old": ["text", 1]}
    assert unpack(b'{"blob": "text"}') == {"blob": "text"}
    with pytest.raises(ValueError, match="format byte 0x07"):
        unpack(b"\x07abc")


def back_to_schema_12(sqlite_url: str) -> None:
    """Replace a fresh state's packed tables by the schema 12 ones (JSON text, text times,
    written with its rowid and primary-key index) and stamp it 12."""
    engine = create_engine(sqlite_url)
    with engine.begin() as db:
        for table in PACKED_TABLES:
            db.execute(text(f"DROP TABLE {table.name}"))
            _legacy(table, table.name).create(db)
        for table in PACKED_TABLES:
            for index in table.indexes:
                index.create(db)
        db.execute(delete(tables.schema_version))
        db.execute(insert(tables.schema_version).values(version=12, applied_at=NOW))
    engine.dispose()


def test_a_schema_12_state_migrates_without_losing_a_value(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact_state, "_BATCH", 500)  # several copy batches
    Store.open(sqlite_url).close()
    back_to_schema_12(sqlite_url)
    old = Store(create_engine(sqlite_url))  # the old layout, written through its old types
    try:
        save_through_schema_12_tables(old)
    finally:
        old.close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT typeof(fields) FROM records LIMIT 1").fetchone() == ("text",)

    store = Store.open(sqlite_url)  # migrates 12 -> LATEST
    try:
        with store.engine.connect() as db:
            assert db.execute(select(func.max(tables.schema_version.c.version))
                              ).scalar() == LATEST
            for table in PACKED_TABLES:
                assert db.execute(select(func.count()).select_from(table)).scalar() == 1200
        assert_reads_back(store, range(0, 1200, 37))
        save_all(store, range(1200, 1202))  # the migrated tables take new rows
        assert_reads_back(store, range(1195, 1202))
    finally:
        store.close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        assert "WITHOUT ROWID" in db.execute(
            "SELECT sql FROM sqlite_schema WHERE name = 'written'").fetchone()[0]
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_schema")}
        assert {"ix_records_person_key", "ix_records_email", "ix_activities_record"} <= names
        assert not {n for n in names if n.endswith("_before16")}


def save_through_schema_12_tables(store: Store) -> None:
    """Write 1,200 people through the store while the schema 12 forms of the tables stand
    in for tables.py's (enough rows for several copy batches of the migration)."""
    originals = {table.name: table for table in PACKED_TABLES}
    try:
        for name, table in originals.items():
            setattr(tables, name, _legacy(table, name))
        save_all(store, range(1200))
    finally:
        for name, table in originals.items():
            setattr(tables, name, table)
