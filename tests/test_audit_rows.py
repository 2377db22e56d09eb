"""The audit trail's row constructors (syncer/run/audit_trail.py): plain functions, no store."""

from __future__ import annotations

from datetime import datetime, timezone

from syncer.domain.types import Decision, Reason, Stage, Succession
from syncer.run.audit_trail import (
    LOST,
    RECOVERED,
    RunStamp,
    creation_row,
    decision_row,
    discarded_row,
    reasons_of,
    recovered_row,
    succession_row,
)
from syncer.store.intents import IntentRow

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)
STAMP = RunStamp(NOW, "run-1")
EVIDENCE = datetime(2026, 12, 1, tzinfo=timezone.utc)
DECISION = Decision(key="p1", score=72, fit_points=40.0, engagement_points=32.0,
                    fit_grade="A", stage=Stage.MQL, owner_email=None,
                    reasons=(Reason("fit.title", 20.0, "title is VP", EVIDENCE),),
                    model_version="m-3")
COLUMNS = {"at", "run_id", "connector", "record_id", "person_key", "field", "old_value",
           "new_value", "outcome", "error", "reasons", "model_version"}


def test_a_decided_field_carries_the_decision_and_its_reasons() -> None:
    row = decision_row(STAMP, "hubspot", "101", "lifecyclestage", "lead", "marketingqualifiedlead",
                       DECISION, "intent")
    assert set(row) == COLUMNS
    assert (row["person_key"], row["model_version"], row["outcome"], row["error"]) == (
        "p1", "m-3", "intent", None)
    assert row["reasons"] == [{"rule_id": "fit.title", "points": 20.0, "detail": "title is VP",
                               "evidence_at": EVIDENCE.isoformat()}]
    note = Reason("model.rollback", 0.0, "rolled back to m-3")
    assert reasons_of(DECISION, note)[-1]["rule_id"] == "model.rollback"


def test_a_recovered_intent_keeps_its_columns_but_not_its_id() -> None:
    intent: IntentRow = {"id": 7, "run_id": "killed", "connector": "hubspot", "record_id": "101",
                         "person_key": "p1", "field": "score", "old_value": "10",
                         "new_value": "72", "reasons": [], "model_version": "m-3"}
    landed = recovered_row(intent, NOW, landed=True)
    lost = recovered_row(intent, NOW, landed=False)
    assert set(landed) == COLUMNS and "id" not in landed
    assert (landed["run_id"], landed["at"], landed["new_value"]) == ("killed", NOW, "72")
    assert (landed["outcome"], landed["error"]) == ("written", RECOVERED)
    assert (lost["outcome"], lost["error"]) == ("not_written", LOST)


def test_creations_successions_and_discards_say_what_happened() -> None:
    created = creation_row(STAMP, "salesforce", "p1", DECISION, "00Q1", "identity",
                           "created Lead", "created")
    failed = creation_row(STAMP, "salesforce", "p1", DECISION, "", "identity", "create",
                          "failed", error="DUPLICATES_DETECTED: use one of these records?")
    assert set(created) == set(failed) == COLUMNS
    assert (created["old_value"], created["outcome"], failed["record_id"]) == (
        None, "created", "")
    moved = succession_row(STAMP, Succession("salesforce", "00Q1", "0031", "converted",
                                             at=EVIDENCE), "p1", "p2", "m-3")
    assert (moved["field"], moved["outcome"], moved["new_value"]) == (
        "identity", "converted", "0031")
    assert moved["reasons"][0]["detail"] == (
        "00Q1 converted into 0031; person p2 folded into this one")
    discarded = discarded_row(STAMP, "hubspot", "101", "p1", "score", "72", "by dana", "-")
    assert (discarded["outcome"], discarded["reasons"], discarded["error"]) == (
        "discarded", [], "by dana")
