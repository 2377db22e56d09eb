"""`syncer sync --once --dry-run` against the sandbox CRMs: it lists every write a real
sync then makes (record, field and new value, checked against the real sync's audit
rows), writes nothing to either CRM or to the state's decisions, and `--json` lines
parse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncer.cli import main
from syncer.domain.config import LoadedConfig
from syncer.observe.logs import configure_logging
from syncer.run.dry_run_report import HEADERS, VALUE_CHARS
from syncer.store.repository import Store
from tests.conftest import NOW, Sandboxes, sandbox_config_data, write_config

AT = NOW.isoformat()
Write = tuple[str, str, str, str | None]


@pytest.fixture
def loaded(sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[LoadedConfig]:
    """The example config on the sandboxes, Salesforce creating the people HubSpot
    qualifies, on a fresh SQLite state."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    for connector in data["connectors"]:
        if connector["kind"] == "salesforce":
            connector["create"] = {}
    yield write_config(tmp_path / "syncer.yaml", data)
    configure_logging("info")  # sync points the logs at the captured stderr


def crms(sandboxes: Sandboxes) -> list[Any]:
    return [sandboxes.hubspot.records(), sandboxes.salesforce.records()]


def sync(capsys: pytest.CaptureFixture[str], loaded: LoadedConfig, *flags: str) -> str:
    capsys.readouterr()
    code = main(["sync", "--once", "--config", str(loaded.path), "--as-of", AT, *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_a_dry_run_lists_exactly_what_the_real_sync_then_writes(
        loaded: LoadedConfig, sandboxes: Sandboxes,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = crms(sandboxes)
    lines = [json.loads(line) for line in sync(capsys, loaded, "--dry-run",
                                               "--json").splitlines()]
    writes = [line for line in lines if line["type"] == "write"]
    creates = [line for line in lines if line["type"] == "create"]
    assert [line["type"] for line in lines] == \
        ["write"] * len(writes) + ["create"] * len(creates) + ["summary"]
    assert {w["connector"] for w in writes} == {"hubspot", "salesforce"} and creates
    assert all(w["reason"] and w["person"] for w in writes)
    summary = lines[-1]
    assert summary["dry_run"] is True and summary["creates"] == {"salesforce": len(creates)}
    assert sum(n for fields in summary["writes"].values() for n in fields.values()) == \
        len(writes)
    assert summary["records"] == len({(w["connector"], w["record_id"]) for w in writes})

    # Nothing written: not to the CRMs, not to the state's decisions or audit log.
    assert crms(sandboxes) == before
    store = Store.open(loaded.state_url)
    try:
        assert store.person_keys() and store.decisions(store.person_keys()) == {}
        assert store.audit_rows() == []
    finally:
        store.close()

    # The text form lists the same writes, one aligned row each, then the summary.
    text = sync(capsys, loaded, "--dry-run").splitlines()
    head = text.index(next(line for line in text if line.startswith(HEADERS[0])))
    rows = text[head + 1:head + 1 + len(writes)]
    assert text[head].split() == ["CRM", "RECORD", "FIELD", "OLD", "->", "NEW", "WHY"]
    listed = sorted((w["connector"], w["record_id"], w["field"]) for w in writes)
    assert [tuple(row.split()[:3]) for row in rows] == listed
    # The columns line up: every row's field and values start under their header.
    field_at, values_at = text[head].index("FIELD"), text[head].index("OLD -> NEW")
    assert [row[field_at:].split()[0] for row in rows] == [field for *_, field in listed]
    assert all(row[values_at - 2:values_at] == "  " and row[values_at] != " "
               for row in rows)
    assert text[head + 1 + len(writes)] == ""
    assert text[head + 2 + len(writes)] == (
        f"dry run: would write {len(writes)} fields on {summary['records']} records; "
        "nothing was written")
    assert any(f"would create {len(creates)} people in salesforce" in line for line in text)
    for row, write in zip(rows, sorted(writes, key=lambda w: (w["connector"],
                                                            w["record_id"], w["field"])),
                          strict=True):
        new = " ".join((write["new"] or "-").split())
        assert (new if len(new) <= VALUE_CHARS else new[:VALUE_CHARS - 1] + "…") in row
    assert crms(sandboxes) == before

    # The real sync writes exactly those fields with those values.
    sync(capsys, loaded)
    store = Store.open(loaded.state_url)
    try:
        run_id = store.runs(1)[0].run_id
        audit = store.audit_rows(run_id=run_id)
    finally:
        store.close()
    # People the real sync created (or linked to a record their CRM already had) are the
    # dry run's planned creations; their records did not exist for the dry run to list.
    new = {(r["connector"], r["record_id"]): r["person_key"] for r in audit
           if r["field"] == "identity" and r["outcome"] in ("created", "linked")}
    assert sorted(new.values()) == sorted(c["person"] for c in creates)
    written: set[Write] = {(r["connector"], r["record_id"], r["field"], r["new_value"])
                           for r in audit if r["outcome"] == "written"
                           and (r["connector"], r["record_id"]) not in new}
    planned: set[Write] = {(w["connector"], w["record_id"], w["field"], w["new"])
                           for w in writes}
    assert written == planned and len(planned) == len(writes)


def test_a_skipped_run_gives_scripts_a_summary_object() -> None:
    from syncer.run.dry_run_report import report_lines
    from syncer.run.pipeline import RunSummary

    skipped = RunSummary(run_id="r1", dry_run=True, status="skipped")
    assert [json.loads(line) for line in report_lines(skipped, as_json=True)] == [
        {"type": "summary", "run_id": "r1", "status": "skipped", "dry_run": True,
         "writes": {}, "records": 0, "creates": {}}]
    assert report_lines(RunSummary(run_id="r2", dry_run=False), as_json=False) == []
