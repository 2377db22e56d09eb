"""Ids an append keeps for the next ones (audit_refs.KnownIds) are cited only while they
are good: not after the transaction that stored them rolled back (SQLite hands those ids
out again), nor after an archive deleted the texts and reasons lists they name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from syncer.store.audit_archive import archive_older_than, verify_with_archives
from syncer.store.repository import Store
from tests.conftest import NOW

LONG = "LEAD 18 (fit B): not MQL: score 18 below 25, engagement -10 below 3"


def rows(person: int, run: str = "run1", at: Any = NOW, note: str = "") -> list[dict[str, Any]]:
    """A decision's intent and outcome rows on its own record: a new subject, a new long
    value and a new reasons list for each person (and `note`)."""
    listed = [{"rule_id": "fit.title", "points": 15.0, "detail": f"VP ({person}{note})",
               "evidence_at": None}]
    return [{"at": at, "run_id": run, "connector": "hubspot", "record_id": f"r{person}",
             "person_key": f"p{person}@example.com", "field": field, "old_value": None,
             "new_value": new, "outcome": outcome, "error": None, "model_version": "m@1",
             "reasons": listed}
            for outcome in ("intent", "written")
            for field, new in (("syncer_reasons", f"{LONG} ({person}{note})"),
                               ("syncer_score", str(person)))]


def check(store: Store, given: list[dict[str, Any]]) -> None:
    """Every row reads back as given, and the chain verifies."""
    assert not store.audit_log.verify().problems
    got = store.audit_rows()
    assert [{k: r[k] for k in given[0] if k != "at"} for r in got] == [
        {k: g[k] for k in g if k != "at"} for g in given]


class Boom(Exception):
    pass


def test_ids_of_a_rolled_back_append_are_not_cited_again(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        given = rows(1)
        with store.transaction() as tx:
            store.append_audit(tx, given)
        with pytest.raises(Boom), store.transaction() as tx:
            store.append_audit(tx, rows(2))  # stores person 2's subject, text and reasons
            raise Boom
        for person in (3, 2, 1):  # 3 takes the ids 2 had; 2 is stored again
            with store.transaction() as tx:
                store.append_audit(tx, rows(person))
            given += rows(person)
        check(store, given)
    finally:
        store.close()


def test_ids_of_an_earlier_append_in_the_same_transaction_are_cited(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        with pytest.raises(Boom), store.transaction() as tx:
            store.append_audit(tx, rows(1))
            store.append_audit(tx, rows(1, note="+") + rows(1))
            raise Boom
        given = rows(2)
        with store.transaction() as tx:
            store.append_audit(tx, given)
            store.append_audit(tx, rows(2))
        with store.transaction() as tx:
            store.append_audit(tx, rows(1))
        check(store, given + rows(2) + rows(1))
    finally:
        store.close()


def test_a_failed_append_after_one_that_stored_ids_leaves_none_behind(state_url: str
                                                                       ) -> None:
    store = Store.open(state_url)
    try:
        broken = rows(2)
        broken[-1] = {**broken[-1], "at": "not a time"}
        with pytest.raises(TypeError), store.transaction() as tx:
            store.append_audit(tx, rows(1) + rows(2, note="-"))
            store.append_audit(tx, rows(3) + broken)
        given = rows(3) + rows(1) + rows(2, note="-")
        with store.transaction() as tx:
            store.append_audit(tx, given)
        check(store, given)
    finally:
        store.close()


def test_texts_and_reasons_an_archive_deleted_are_stored_again(state_url: str,
                                                               tmp_path: Path) -> None:
    store = Store.open(state_url)
    other = Store.open(state_url)  # another process sharing the state
    try:
        with store.transaction() as tx:
            store.append_audit(tx, rows(1) + rows(2))
        later = NOW + timedelta(days=2)
        for n, archiving in enumerate((store, other)):
            result = archive_older_than(archiving.audit_log, later - timedelta(days=1),
                                        tmp_path / f"archives{n}")
            assert result is not None
            with store.transaction() as tx:  # person 1's text and reasons were deleted
                store.append_audit(tx, rows(1, "run2", later))
            later += timedelta(days=2)
        assert verify_with_archives(store.audit_log).ok
        kept = store.audit_rows()
        assert [r["new_value"] for r in kept] == [r["new_value"] for r in rows(1)]
        assert kept[0]["reasons"] == rows(1)[0]["reasons"]
    finally:
        other.close()
        store.close()


def test_ids_of_an_append_in_a_savepoint_undone_are_not_cited(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            store.append_audit(tx, rows(1))
            savepoint = tx.begin_nested()
            store.append_audit(tx, rows(2))
            savepoint.rollback()
            store.append_audit(tx, rows(3) + rows(2))
        check(store, rows(1) + rows(3) + rows(2))
    finally:
        store.close()
