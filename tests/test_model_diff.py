"""`syncer model diff`: replay the stored profiles of a real sync through two models and
report the difference, without writing anything (checked row by row, and by the database
refusing writes on the preview's connections)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.exc import DBAPIError

from syncer.cli import main
from syncer.domain.config import LoadedConfig
from syncer.domain.types import SALES_OWNED_STAGES, Decision, Reason, Stage
from syncer.qualify import load_model
from syncer.run.preview import (
    Change,
    PreviewError,
    diff_models,
    format_diff,
    open_read_only,
    reason_changes,
)
from syncer.store.migrations import LATEST, SchemaTooNew
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_MODEL, NOW, Sandboxes, sync_once

AT = NOW.isoformat()


def sync(loaded: LoadedConfig) -> None:
    summary = sync_once(loaded)
    assert summary.people > 100 and not summary.failures


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so "wrote nothing" is checked, not assumed."""
    engine = create_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    try:
        with engine.connect() as connection:
            return {name: sorted((tuple(row) for row in connection.execute(select(table))),
                                 key=repr)
                    for name, table in metadata.tables.items()}
    finally:
        engine.dispose()


def new_model(tmp_path: Path) -> Path:
    """The example with a lower MQL threshold and free-mail addresses disqualified."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_MODEL.read_text(encoding="utf-8"))
    data["qualification"]["mql_score"] -= 10
    data["lifecycle"]["disqualify"].append(
        {"id": "free_mail", "field": "email", "email_domain_in": ["gmail.com", "yahoo.com"]})
    path = tmp_path / "model.new.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_model_diff_after_a_real_sync_reports_changes_and_writes_nothing(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sync(sandbox_config)
    url = sandbox_config.state_url
    before = snapshot(url)
    crm_before = (sandboxes.hubspot.records(), sandboxes.salesforce.records())
    path = new_model(tmp_path)
    capsys.readouterr()  # the sync's own log lines

    code = main(["model", "diff", str(EXAMPLE_MODEL), str(path), "--config",
                 str(sandbox_config.path), "--at", AT, "--sample", "6"])
    out = capsys.readouterr().out
    assert code == 0
    assert snapshot(url) == before
    assert (sandboxes.hubspot.records(), sandboxes.salesforce.records()) == crm_before

    # Expectations from the store alone, not from the preview's code.
    store = Store.open(url)
    try:
        keys = store.person_keys()
        stored = store.decisions(keys)
    finally:
        store.close()
    stages = Counter(d.stage for d in stored.values())
    free_mail = [k for k in keys if k.endswith(("@gmail.com", "@yahoo.com"))
                 and stored[k].stage not in SALES_OWNED_STAGES
                 and stored[k].stage is not Stage.DISQUALIFIED]
    assert free_mail, "the sandbox world has free-mail people"

    old, new = load_model(EXAMPLE_MODEL), load_model(path)
    assert out.startswith(f"model diff {old.version} -> {new.version} (replayed at "
                          "2026-11-20 12:00Z)\n")
    assert f"people compared: {len(keys)};" in out
    lines = out.splitlines()
    transitions = {line.split(":")[0].strip(): int(line.rsplit(":", 1)[1])
                   for line in lines if line.startswith(("  up ", "  down "))}
    # Replaying the model the sync used gives what the sync stored (decisions are a
    # fixpoint), so the "old" column is the stored stages.
    assert f"MQL: {stages[Stage.MQL]} -> " in out
    assert f"SQL: {stages[Stage.SQL]} -> {stages[Stage.SQL]}" in out
    down = {k: n for k, n in transitions.items() if k.startswith("down")}
    up = {k: n for k, n in transitions.items() if k.startswith("up")}
    assert sum(down.values()) == len(free_mail)
    assert all(k.endswith("-> disqualified") for k in down)
    assert up and all(k.endswith("-> mql") for k in up)  # a lower threshold only adds MQLs
    sample = [line for line in lines if line.startswith("  ") and "@" in line
              and " -> " in line and ", score " in line]
    assert len(sample) == 6
    assert any("lifecycle.disqualify.free_mail: disqualified: email domain" in line
               for line in lines)


def test_diff_api_counts_match_the_stored_decisions(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, tmp_path: Path) -> None:
    sync(sandbox_config)
    url = sandbox_config.state_url
    old, new = load_model(EXAMPLE_MODEL), load_model(new_model(tmp_path))
    store = open_read_only(url)
    try:
        same = diff_models(store, sandbox_config, old, old, NOW, sample=3)
        result = diff_models(store, sandbox_config, old, new, NOW, sample=4)
        stored = store.decisions(store.person_keys())
    finally:
        store.close()
    assert same.changed == 0 and same.sample == [] and same.score_changes == 0
    assert same.old_stages == same.new_stages == Counter(d.stage for d in stored.values())
    assert result.people == len(stored)
    assert sum(result.new_stages.values()) == result.people
    for (a, b), n in result.transitions.items():
        assert n > 0 and a is not b
        assert b in (Stage.MQL, Stage.DISQUALIFIED)
        assert result.new_stages[b] >= n
    assert len(result.sample) == 4
    # The sample takes turns across kinds of change: both kinds appear.
    assert {c.new.stage for c in result.sample} == {Stage.MQL, Stage.DISQUALIFIED}
    for change in result.sample:
        assert stored[change.key].stage is change.old.stage
        assert change.old.model_version == old.version
        assert change.new.model_version == new.version
    assert "no one changes stage." in format_diff(same)


def test_the_preview_connection_refuses_writes(sandbox_config: LoadedConfig,
                                               sandboxes: Sandboxes) -> None:
    sync(sandbox_config)
    store = open_read_only(sandbox_config.state_url)
    try:
        with pytest.raises(DBAPIError, match=r"readonly|read-only"):
            with store.transaction() as connection:
                connection.execute(text("DELETE FROM decisions"))
        assert store.decisions(store.person_keys())
    finally:
        store.close()


# ---------------------------------------------------------------- errors an admin can fix


def test_bad_model_files_are_all_reported(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfit:\n  grades: [{grade: A, min: 0}]\nqualification: {}\n")
    code = main(["model", "diff", str(tmp_path / "missing.yaml"), str(bad),
                 "--state", f"sqlite:///{tmp_path / 'state.db'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"invalid qualification model {tmp_path / 'missing.yaml'} (1 problem)" in err
    assert "file not found. Fix:" in err
    assert f"invalid qualification model {bad} (1 problem)" in err
    assert "`mql_score` is required with `mode: total`" in err
    assert not (tmp_path / "state.db").exists()


def test_a_missing_state_database_is_not_created(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "nothing" / "state.db"
    code = main(["model", "diff", str(EXAMPLE_MODEL), str(EXAMPLE_MODEL),
                 "--state", f"sqlite:///{database}"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == (f"syncer: no state at {database}: run `syncer sync --once` (or `syncer demo`) "
                   "first, or pass --state URL\n")
    assert not database.parent.exists()


def test_a_database_without_syncer_state_or_of_another_version(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    engine = create_engine(f"sqlite:///{empty}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    with pytest.raises(PreviewError, match="has no syncer state; this syncer expects"):
        open_read_only(f"sqlite:///{empty}")
    newer = tmp_path / "newer.db"
    Store.open(f"sqlite:///{newer}").close()
    engine = create_engine(f"sqlite:///{newer}")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO schema_version (version, applied_at) "
                                "VALUES (:v, '2030-01-01 00:00:00')"), {"v": LATEST + 1})
    engine.dispose()
    with pytest.raises(SchemaTooNew, match=f"is at schema version {LATEST + 1}, this syncer "
                                           f"knows up to {LATEST}: upgrade syncer"):
        open_read_only(f"sqlite:///{newer}")  # exits 3, as for every command


def test_at_must_be_an_iso_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["model", "diff", "a.yaml", "b.yaml", "--at", "yesterday"])
    assert info.value.code == 2
    assert "'yesterday' is not an ISO 8601 time" in capsys.readouterr().err


def test_model_show_summarizes_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "show", str(EXAMPLE_MODEL)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"model {load_model(EXAMPLE_MODEL).version}: Default B2B")
    assert ("  MQL when total: score >= 25, fit >= 0, engagement >= 3; a recycled person "
            "again only with 5 points to spare (hysteresis)") in out
    assert ("  scores: primary (the one stages and routing read); lead_routing (the main "
            "fit, 9 engagement rules)") in out
    assert "  recycle: stale_mql (mql -> recycled after 90 days)" in out
    assert "  disqualify: competitor, own_company; disqualified is kept" in out


# ---------------------------------------------------------------- explaining one change


def decision(stage: Stage, *reasons: Reason) -> Decision:
    return Decision("kim@x.test", 0, 0.0, 0.0, "A", stage, None, reasons, "m@1")


def test_reason_changes_lists_the_rules_that_made_the_difference() -> None:
    old = decision(Stage.LEAD, Reason("fit.vp", 20, "title 'VP' contains 'vp'"),
                   Reason("engagement.pricing", 6, "pricing_page_view 2026-10-01"),
                   Reason("stage.lead", 0, "not MQL: score 26 below 30"))
    new = decision(Stage.MQL, Reason("fit.vp", 25, "title 'VP' contains 'vp'"),
                   Reason("engagement.pricing", 6, "pricing_page_view 2026-10-01"),
                   Reason("engagement.webinar", 4, "webinar_attendance 2026-09-01"),
                   Reason("stage.mql", 0, "score 35 >= 30"))
    assert reason_changes(Change("kim@x.test", old, new)) == [
        "fit.vp: +20.0 -> +25.0 (title 'VP' contains 'vp')",
        "engagement.webinar: - -> +4.0 (webinar_attendance 2026-09-01)",
        "stage.mql: score 35 >= 30",
    ]
    many = decision(Stage.MQL, *(Reason(f"fit.r{i}", i + 1, "x") for i in range(9)))
    lines = reason_changes(Change("kim@x.test", decision(Stage.LEAD), many), limit=4)
    assert lines[-1] == "... and 6 more" and len(lines) == 4
