"""A decision's reasons are converted once and encoded once across a sync's appends: the
store keeps each reasons tuple's stored list (Store.reasons_json, shared by the decisions
row and the writer's audit rows in every send and CRM) and the audit log keeps each list's
canonical text across appends (AuditLog.texts). What is stored is exactly what converting
and encoding them afresh every time stores: the same audit rows, hashes, reasons lists,
chain head and decisions rows, byte for byte, with the caches at their size, evicting
all the time, or off."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from syncer.domain.types import Decision, Person, PushResult, Reason, RecordUpdate, Stage
from syncer.run import push
from syncer.run.push import Writer, WriteTally
from syncer.store import audit, audit_storage, repository
from syncer.store.repository import Store
from tests.conftest import NOW

NOTE = Reason("model.rollback", 0.0, "rolled back to model@1 by \"ops\"", NOW)
#: what the writer reads of the config: no owner field (no failures are written here)
LOADED: Any = SimpleNamespace(connector=lambda name: SimpleNamespace(
    fields=SimpleNamespace(owner=None)))
#: the tables an append and save_decisions write (audit_chain apart: its updated_at is
#: the wall clock's)
TABLES = ("audit", "audit_reasons", "audit_stamps", "audit_subjects", "audit_names",
          "audit_texts", "decisions")


class Accepting:
    """A CRM that takes every write."""

    api_calls = 0

    def push(self, updates: Sequence[RecordUpdate]) -> list[PushResult]:
        return [PushResult(u.record_id, ok=True) for u in updates]


def decided() -> list[Decision]:
    """A dozen decisions: reasons with and without evidence, text that needs escaping, two
    decisions sharing one reasons tuple (a rollback's replace()), one with none."""
    out = []
    for person in range(12):
        reasons = tuple(Reason(f"fit.rule{r}", 5.0 * r - person, f"rule {r} \"é\" ({person})",
                               NOW - timedelta(days=r) if r % 2 else None)
                        for r in range(person % 4 + 1))
        out.append(Decision(f"p{person}@example.com", 10 * person, 1.5 * person, 2.0, "B",
                            Stage.MQL if person % 3 else Stage.LEAD, None,
                            () if person == 5 else reasons, "model@2"))
    out.append(replace(out[3], key="p3-again@example.com", stage=Stage.SAL))
    return out


def items(crm: str, decisions: Sequence[Decision]) -> list[tuple[RecordUpdate, Person, Decision]]:
    """Three fields per record; on Salesforce every fourth decision cites one reason more
    for that record (as a shared field's reason does: a decision of its own)."""
    out = []
    for i, decision in enumerate(decisions):
        if crm == "salesforce" and i % 4 == 0:
            decision = replace(decision, reasons=(*decision.reasons,
                                                  Reason("shared.title", 0.0, "HubSpot's newer")))
        values: dict[str, str | None] = {"score": str(decision.score), "stage": decision.stage,
                                         "reasons": None if i % 5 == 0 else f"r{i}"}
        record = Person(crm, f"{crm}-{i}", "contact", decision.key,
                        crm_values={"score": "0", "stage": None})
        out.append((RecordUpdate(record.record_id, "contact", values), record, decision))
    return out


def sync_writes(store: Store, note: Reason | None) -> None:
    """What a sync's writes do with a chunk of decisions: save them, audit the hand-set
    fields kept, then send each CRM's batches (out of phase: 4 and 5 records) and settle
    them at the next flush."""
    decisions = decided()
    with store.transaction() as tx:
        store.save_decisions(tx, decisions, NOW)
    writer = Writer(LOADED, store, {"hubspot": Accepting(), "salesforce": Accepting()}, NOW,
                    "run-kept", WriteTally(), note=note)
    writer.hold("hubspot", [(record, decision, {"owner": "kim"}, {"owner": "lee"})
                            for _, record, decision in items("hubspot", decisions[:3])])
    queued = {crm: items(crm, decisions) for crm in ("hubspot", "salesforce")}
    sizes = {"hubspot": 4, "salesforce": 5}
    sending: list[push.Sending] = []
    while any(queued.values()):
        for batch in sending:
            writer.settle(batch)
        sending = []
        for crm, size in sizes.items():
            if queued[crm]:
                sending.append(writer.send(crm, queued[crm][:size]))
                queued[crm] = queued[crm][size:]
    for batch in sending:
        writer.settle(batch)


def stored(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of TABLES as the database holds it, and the chain's head."""
    with store.engine.connect() as connection:
        tables = {name: [tuple(row) for row in connection.exec_driver_sql(
            f"SELECT * FROM {name} ORDER BY 1")] for name in TABLES}
        tables["audit_chain"] = [tuple(row) for row in connection.exec_driver_sql(
            "SELECT name, last_id, head_hash FROM audit_chain")]
    return tables


def kept_at_most(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """The caches' size (0: each list converted and encoded every time it is handed over)."""
    for module in (push, repository, audit):
        monkeypatch.setattr(module, "A_FEW_CHUNKS", limit)


def written(tmp_path: Path, name: str, note: Reason | None) -> dict[str, list[tuple[Any, ...]]]:
    store = Store.open(f"sqlite:///{tmp_path / name}.db")
    try:
        sync_writes(store, note)
        report = store.audit_log.verify()
        assert report.ok and not report.problems
        return stored(store)
    finally:
        store.close()


@pytest.mark.parametrize("note", [None, NOTE], ids=["no note", "rollback note"])
def test_kept_reasons_store_the_same_bytes_as_converting_them_every_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, note: Reason | None) -> None:
    kept = written(tmp_path, "kept", note)
    for limit in (0, 2):
        with monkeypatch.context() as patched:
            kept_at_most(patched, limit)
            assert written(tmp_path, f"limit{limit}", note) == kept
    assert len(kept["audit"]) == 3 + 2 * 3 * 13  # held; two CRMs' writes, one row per field


def counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[object]:
    """Every object `module.name` is called with, kept (so their ids stay theirs)."""
    seen: list[object] = []
    original: Callable[[object], Any] = getattr(module, name)

    def counted(value: object) -> Any:
        seen.append(value)
        return original(value)
    monkeypatch.setattr(module, name, counted)
    return seen


def test_each_reasons_tuple_is_converted_once_and_each_list_encoded_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    converted = counting(monkeypatch, repository, "reasons_to_json")
    encoded = counting(monkeypatch, audit_storage, "canonical_reasons")
    store = Store.open(f"sqlite:///{tmp_path / 'state'}.db")
    try:
        sync_writes(store, None)
        rows = store.audit_rows()
    finally:
        store.close()
    assert max(Counter(map(id, converted)).values()) == 1
    assert max(Counter(map(id, encoded)).values()) == 1
    # the dozen distinct reasons tuples saved, and the four Salesforce records' own
    assert len(converted) == 12 + 4
    assert len(encoded) == len(converted)
    by_key = {d.key: d for d in decided()}
    for row in rows:
        reasons = [r["rule_id"] for r in row["reasons"]]
        own = [r.rule_id for r in by_key[str(row["person_key"])].reasons]
        assert reasons in (own, [*own, "shared.title"])
