"""The audit append's fast paths (issue 18, item 1) give exactly what the slow ones did:
the row hash written out key by key is row_hash's, a decision's shared reasons list is
encoded once yet every row verifies, and SQLite's plain-tuple insert stores what the
column types would (read back equal, chain intact)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from syncer.store.audit import _normalised, _stored_row_hash
from syncer.store.audit_chain import row_hash
from syncer.store.audit_reasons import canonical_reasons
from syncer.store.repository import Store
from tests.conftest import NOW

ALPHABET = 'ab"\\\n\t\x00\x1f\u00e9\u2028\u4e2d\U0001f600 "reasons":null'


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def test_the_row_hash_written_out_is_row_hash_for_any_values() -> None:
    rng = random.Random(18)
    for _ in range(3000):
        zone = timezone(timedelta(hours=rng.randint(-5, 5)))
        row: dict[str, Any] = {
            "at": datetime(2026, 1, 1, tzinfo=zone) + timedelta(microseconds=rng.randint(
                0, 10**12)),
            **{name: _text(rng) for name in ("run_id", "connector", "record_id", "person_key",
                                             "field", "outcome", "model_version")},
            **{name: rng.choice([None, _text(rng)]) for name in ("old_value", "new_value",
                                                                 "error")}}
        listed = [{"rule_id": _text(rng), "points": rng.random(), "detail": _text(rng),
                   "evidence_at": None}]
        text = canonical_reasons(listed)
        record = _normalised(row, []) | {"id": rng.randint(1, 10**9)}
        assert _stored_row_hash(record, "ab" * 32, text) == row_hash(record, "ab" * 32, text)


def _decision_rows(person: int, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Intent and outcome rows of four fields citing one reasons list object, as the
    writer hands them over."""
    return [{"at": NOW, "run_id": "run1", "connector": "hubspot", "record_id": str(person),
             "person_key": f"p{person}@example.com", "field": f"field{f}",
             "old_value": None if f % 2 else "é\"x", "new_value": str(f), "outcome": outcome,
             "error": None, "model_version": "model@1", "reasons": listed}
            for outcome in ("intent", "written") for f in range(4)]


def test_rows_sharing_a_reasons_list_verify_and_read_back(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        rows = []
        for person in range(3):
            listed = [{"rule_id": "fit.title", "points": 15.0 + person,
                       "detail": f"VP title ({person})", "evidence_at": None}]
            rows += _decision_rows(person, listed)
        with store.transaction() as tx:
            store.append_audit(tx, rows)
        with store.transaction() as tx:  # a second append chains after the first
            store.append_audit(tx, _decision_rows(9, []))
        report = store.audit_log.verify()
        assert not report.problems
        stored = store.audit_rows()
        assert len(stored) == len(rows) + 8
        for given, got in zip(rows, stored, strict=False):
            assert got["reasons"] == given["reasons"]
            assert got["at"] == NOW
            assert (got["old_value"], got["new_value"], got["outcome"]) == (
                given["old_value"], given["new_value"], given["outcome"])
        assert [r["id"] for r in stored] == list(range(1, len(stored) + 1))
    finally:
        store.close()


def _random_rows(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Rows as a writer might hand them: runs of rows sharing one object each for the
    time, run, connector, record, person, model version and reasons list, broken at
    random by a new object (equal or not: a copy of the string, the same instant in
    another zone, an equal list that encodes differently), long and short values."""
    shared: dict[str, Any] = {}
    rows = []
    for _ in range(count):
        if not shared or rng.random() < 0.2:
            zone = timezone(timedelta(hours=rng.randint(-5, 5)))
            shared = {"at": datetime(2026, 1, 1, tzinfo=zone) + timedelta(
                          microseconds=rng.randint(0, 10**9)),
                      **{name: _text(rng) for name in ("run_id", "connector", "record_id",
                                                       "person_key", "model_version")},
                      "reasons": [{"rule_id": _text(rng), "points": rng.choice([1, 1.0]),
                                   "detail": _text(rng), "evidence_at": None}]}
        elif rng.random() < 0.3:  # a new object for one of them, equal or not
            name = rng.choice(["at", "run_id", "connector", "record_id", "person_key",
                               "model_version", "reasons"])
            value = shared[name]
            if name == "at":
                value = value.astimezone(timezone(timedelta(hours=rng.randint(-5, 5))))
            elif name == "reasons":
                value = [dict(value[0], points=rng.choice([1, 1.0]))]
            else:
                value = rng.choice(["".join(value), _text(rng)])
            shared = {**shared, name: value}
        rows.append({**shared, "field": _text(rng), "outcome": _text(rng),
                     **{name: rng.choice([None, _text(rng), _text(rng) * 10])
                        for name in ("old_value", "new_value", "error")}})
    return rows


def test_rows_in_runs_of_shared_objects_chain_as_row_hash_says(sqlite_url: str) -> None:
    """The append works out what a run of rows shares once; every row still hashes as
    row_hash of its own normalised form (verify recomputes it) and reads back as given."""
    rng = random.Random(181)
    store = Store.open(sqlite_url)
    try:
        appended = []
        for _ in range(4):
            rows = _random_rows(rng, 300)
            with store.transaction() as tx:
                store.append_audit(tx, rows)
            appended += rows
        assert not store.audit_log.verify().problems
        stored = store.audit_rows()
        assert len(stored) == len(appended)
        for given, got in zip(appended, stored, strict=True):
            expected = _normalised(given) | {"id": got["id"], "prev_hash": got["prev_hash"],
                                             "reasons": canonical_reasons(given["reasons"])}
            assert {**got, "reasons": canonical_reasons(got["reasons"])} == {
                **expected, "row_hash": got["row_hash"]}
            assert got["row_hash"] == row_hash(given | {"id": got["id"]}, str(got["prev_hash"]))
    finally:
        store.close()
