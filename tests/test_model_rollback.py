"""Publishing and rolling back the qualification model: through the command line against
running sandbox CRMs, checked in the CRMs' records, the store's publications and the audit
log; and the publication rules on a bare store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from structlog.testing import capture_logs

from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig, load_config
from syncer.observe.logs import configure_logging
from syncer.ops.scheduler import Daemon
from syncer.qualify import ModelError, load_model
from syncer.run.pipeline import RESCORED_PREFIX
from syncer.run.publication import PublicationError, active_model, publish, rollback
from syncer.store import model_versions, tables
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL, NOW, Sandboxes, sandbox_config_data

AT = NOW.isoformat()
#: per CRM, the fields whose values the model decides: score, fit grade, stage
FIELDS = {"hubspot": ("syncer_score", "syncer_fit_grade", "lifecyclestage"),
          "salesforce": ("Syncer_Score__c", "Syncer_Fit_Grade__c", "Syncer_Stage__c")}
CrmState = dict[tuple[str, str], tuple[Any, ...]]


def model_text(industry_points: int, manager_points: int = 8) -> str:
    """The example model with other points for target industries and managers."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_MODEL.read_text(encoding="utf-8"))
    for rule in data["fit"]["rules"]:
        if rule["id"] == "target_industry":
            rule["points"] = industry_points
        if rule["id"] == "manager_title":
            rule["points"] = manager_points
    return yaml.safe_dump(data, sort_keys=False)


def crm_state(sandboxes: Sandboxes) -> CrmState:
    state: CrmState = {}
    for record in sandboxes.hubspot.records():
        state[("hubspot", record["id"])] = tuple(record.get(f) for f in FIELDS["hubspot"])
    for record in sandboxes.salesforce.records():
        state[("salesforce", record["Id"])] = tuple(record.get(f)
                                                    for f in FIELDS["salesforce"])
    return state


def score_and_grade(state: CrmState) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {key: (float(values[0]) if values[0] is not None else None, values[1])
            for key, values in state.items()}


@pytest.fixture
def setup(sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[LoadedConfig, Path]:
    """A config whose model file is ours to edit, on a SQLite state database."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    model = tmp_path / "model.yaml"
    model.write_text(model_text(10), encoding="utf-8")
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    data["model"] = str(model)
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path), model


@pytest.fixture(autouse=True)
def plain_logging() -> Iterator[None]:
    """The commands point the logs at the captured stderr; point them back afterwards."""
    yield
    configure_logging("info")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run a command; (exit code, stdout). Its log lines (stderr) are in `LOG[-1]`."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    LOG.append(captured.err)
    return code, captured.out


LOG: list[str] = []


def events(name: str) -> list[dict[str, Any]]:
    """The log events `name` of the last command (JSON lines on stderr)."""
    found = [json.loads(line) for line in LOG[-1].splitlines() if line.startswith("{")]
    return [e for e in found if e["event"] == name]


@pytest.mark.slow
def test_publish_edit_rollback_and_publish_again_through_the_cli(
        setup: tuple[LoadedConfig, Path], sandboxes: Sandboxes,
        capsys: pytest.CaptureFixture[str]) -> None:
    loaded, model_file = setup
    config = str(loaded.path)
    sync = ("sync", "--once", "--config", config, "--as-of", AT)
    v1 = load_model(model_file).version

    code, out = cli(capsys, "model", "publish", "--config", config)
    assert (code, out.strip()) == (0, f"published {v1} (the first) from model.yaml; the next "
                                      "sync re-decides everyone with it")
    assert cli(capsys, "model", "publish", "--config", config)[1].strip() == \
        f"{v1} (model.yaml) is already the active model; nothing to publish"
    assert cli(capsys, *sync)[0] == 0
    after_v1 = crm_state(sandboxes)

    # Edit the file: the next sync publishes it by itself and writes its values.
    model_file.write_text(model_text(30), encoding="utf-8")
    v2 = load_model(model_file).version
    code, out = cli(capsys, *sync)
    assert code == 0
    assert f"model {v2}: published from model.yaml by this sync (was {v1})" in out
    after_v2 = crm_state(sandboxes)
    moved = {key for key in after_v1 if after_v1[key] != after_v2[key]}
    assert len(moved) > 20
    assert any(after_v1[k][2] != after_v2[k][2] for k in moved), "no stage changed"

    code, out = cli(capsys, "model", "rollback", "--config", config, "--note", "too many MQLs")
    assert code == 0 and out.startswith(f"rolled back from {v2} to {v1};")
    code, out = cli(capsys, *sync)
    assert code == 0 and f"model {v1}: a rollback pins it (rolled back from {v2}" in out
    assert [(e["file"], e["active"]) for e in events("model.file_not_published")] == \
        [(v2, v1)]  # the file still holds v2, which is no longer published
    after_rollback = crm_state(sandboxes)
    # Everyone was re-decided with v1: scores, grades and stages are v1's again everywhere
    # (what v2 promoted is undone, though stages never move backwards by scoring).
    assert score_and_grade(after_rollback) == score_and_grade(after_v1)
    assert after_rollback == after_v1
    store = Store.open(loaded.state_url)
    try:
        run = store.runs(1)[0]
        assert run.stats["people"] == len(store.person_keys())
        rows = store.audit_rows(run_id=run.run_id)
        assert {r["model_version"] for r in rows} == {v1}
        cited = [[r for r in row["reasons"] if r["rule_id"] == "model.rollback"]
                 for row in rows]
        assert rows and all(len(c) == 1 for c in cited)
        assert re.fullmatch(
            f"model rolled back from {re.escape(v2)} to {re.escape(v1)} at "
            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \(too many MQLs\)", cited[0][0]["detail"])
        written = {(r["connector"], r["record_id"]) for r in rows if r["outcome"] == "written"}
        rescored = {key for key in moved
                    if score_and_grade(after_v1)[key] != score_and_grade(after_v2)[key]}
        assert rescored and rescored <= written
        with store.engine.connect() as db:
            undone = db.execute(select(
                tables.stage_history.c.cause, tables.stage_history.c.model_version).where(
                tables.stage_history.c.run_id == run.run_id)).all()
        assert undone and set(undone) == {("rollback", v1)}
    finally:
        store.close()

    # While pinned, an edit of the file is not published; the sync says so and keeps v1.
    model_file.write_text(model_text(10, manager_points=20), encoding="utf-8")
    v3 = load_model(model_file).version
    code, out = cli(capsys, *sync)
    assert code == 0 and f"model {v1}: a rollback pins it" in out
    assert [(e["file"], e["active"]) for e in events("model.file_not_published")] == \
        [(v3, v1)]
    assert crm_state(sandboxes) == after_rollback
    code, out = cli(capsys, "model", "history", "--config", config)
    lines = out.splitlines()
    assert lines[0] == f"active: {v1} (rollback #3 pins it until a changed model file is " \
                       "published)"
    assert [line.split()[4:6] for line in lines[1:]] == [
        ["rollback", v1], ["publish", v2], ["publish", v1]]
    assert lines[1].endswith(f"from {v2}  too many MQLs")

    # An explicit publish ends the pin: v3 is active and written.
    code, out = cli(capsys, "model", "publish", "--config", config)
    assert (code, out.strip()) == (0, f"published {v3} (was {v1}) from model.yaml; the next "
                                      "sync re-decides everyone with it")
    code, out = cli(capsys, *sync)
    assert code == 0 and "a rollback pins" not in out
    after_v3 = score_and_grade(crm_state(sandboxes))
    assert after_v3 != score_and_grade(after_v1)
    store = Store.open(loaded.state_url)
    try:
        rows = store.audit_rows(run_id=store.runs(1)[0].run_id)
        assert rows and {r["model_version"] for r in rows} == {v3}
        assert not any(r["rule_id"] == "model.rollback" for row in rows
                       for r in row["reasons"])
    finally:
        store.close()


def test_the_daemon_resolves_the_model_before_each_run(
        setup: tuple[LoadedConfig, Path]) -> None:
    loaded, model_file = setup
    v1 = load_model(model_file).version
    with Runtime(loaded) as runtime:
        daemon = Daemon(runtime, health_port=0)
        store = runtime.require_store()

        def decided_with() -> set[str]:
            return {d.model_version for d in store.decisions(store.person_keys()).values()}

        daemon._job("hubspot")()
        assert decided_with() == {v1}
        model_file.write_text(model_text(30), encoding="utf-8")  # edited while it runs
        daemon._job("hubspot")()
        v2 = load_model(model_file).version
        assert decided_with() == {v2} and model_versions.active(store).version == v2
        rollback(store, datetime.now(timezone.utc))
        daemon._job("hubspot")()
        assert decided_with() == {v1} and runtime.model.version == v1
        model_file.write_text("fit: [broken\n", encoding="utf-8")  # a typo stops nothing
        daemon._job("hubspot")()
        assert store.runs(1)[0].status == "succeeded"


# -- the rules on a bare store (no CRM needed) ----------------------------------------------

@pytest.fixture
def bare(tmp_path: Path) -> Iterator[tuple[LoadedConfig, Path, Store]]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    model = tmp_path / "model.yaml"
    model.write_text(model_text(10), encoding="utf-8")
    data["state"] = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    data["model"] = str(model)
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load_config(path)
    store = Store.open(loaded.state_url)
    yield loaded, model, store
    store.close()


def test_publications_reset_the_rescore_counters_only_when_the_version_changes(
        bare: tuple[LoadedConfig, Path, Store]) -> None:
    loaded, model, store = bare
    today = NOW.date().toordinal()

    def mark_rescored() -> None:
        with store.transaction() as tx:
            for name in ("hubspot", "salesforce"):
                store.set_counter(tx, RESCORED_PREFIX + name, today)

    first = active_model(store, loaded, NOW)  # nothing published: the sync publishes
    assert first.published is not None and first.published.previous_version is None
    mark_rescored()
    again = active_model(store, loaded, NOW)  # same file: nothing new, counters kept
    assert again.published is None and again.model.version == first.model.version
    assert store.counter(RESCORED_PREFIX + "hubspot") == today
    model.write_text(model.read_text() + "\n# a comment changes no version\n")
    assert active_model(store, loaded, NOW).published is None
    model.write_text(model_text(25), encoding="utf-8")
    second = active_model(store, loaded, NOW)
    assert second.published is not None
    assert second.published.previous_version == first.model.version
    assert store.counter(RESCORED_PREFIX + "hubspot") == 0
    assert store.counter(RESCORED_PREFIX + "salesforce") == 0
    mark_rescored()
    assert publish(store, loaded, NOW) == (None, model_versions.active(store))
    assert store.counter(RESCORED_PREFIX + "salesforce") == today
    rollback(store, NOW)
    assert store.counter(RESCORED_PREFIX + "salesforce") == 0


def test_rollback_targets_and_what_a_pin_does(
        bare: tuple[LoadedConfig, Path, Store]) -> None:
    loaded, model, store = bare
    with pytest.raises(PublicationError, match="nothing to roll back to"):
        rollback(store, NOW)
    versions = []
    for points in (10, 20, 30):
        model.write_text(model_text(points), encoding="utf-8")
        row, _ = publish(store, loaded, NOW, note=f"industry {points}")
        assert row is not None
        versions.append(row.version)
    v1, v2, v3 = versions
    # Each rollback without --to goes one publication further back.
    assert rollback(store, NOW).version == v2
    assert rollback(store, NOW).version == v1
    with pytest.raises(PublicationError, match="first published model"):
        rollback(store, NOW)
    # --to: a version, or a unique prefix of its hash; never the active one.
    assert rollback(store, NOW, to=v3.split("@")[1][:6]).version == v3
    with pytest.raises(PublicationError, match="already the active model"):
        rollback(store, NOW, to=v3)
    with pytest.raises(PublicationError, match="no published model 'default@000000'"):
        rollback(store, NOW, to="default@000000")
    row = rollback(store, NOW, to=v1, note="back to basics")
    assert (row.action, row.version, row.previous_version) == ("rollback", v1, v3)

    # Pinned: the file (v3) is not published, a broken file does not matter, and the
    # stored text is what syncs use.
    pinned = active_model(store, loaded, NOW)
    assert pinned.model.version == v1 and pinned.published is None
    assert pinned.rollback is not None and pinned.rollback.from_version == v3
    assert pinned.rollback.reason().detail.endswith("UTC (back to basics)")
    assert model_versions.rollback_note(store, v1) == pinned.rollback.reason()
    assert model_versions.rollback_note(store, v3) is None
    model.write_text("fit: [unclosed\n", encoding="utf-8")
    with capture_logs() as logs:
        assert active_model(store, loaded, NOW).model.version == v1
    assert [e["event"] for e in logs] == ["model.file_invalid"]
    with pytest.raises(ModelError):
        publish(store, loaded, NOW)

    # Publishing the pinned version itself appends nothing; the pin holds until a changed
    # file is published (tests/test_model_publication.py has the rest of the rules).
    model.write_text(model_text(10), encoding="utf-8")
    row, before = publish(store, loaded, NOW)
    assert row is None and before is not None
    assert (before.action, before.version) == ("rollback", v1)
    assert active_model(store, loaded, NOW).rollback is not None
    model.write_text(model_text(40), encoding="utf-8")
    row, _ = publish(store, loaded, NOW)
    assert row is not None and active_model(store, loaded, NOW).rollback is None


def test_a_broken_model_file_fails_a_sync_but_not_the_daemon(
        bare: tuple[LoadedConfig, Path, Store]) -> None:
    loaded, model, store = bare
    model.write_text("name: [broken\n", encoding="utf-8")
    with pytest.raises(ModelError, match="line 1"):
        active_model(store, loaded, NOW)  # nothing published: nothing to fall back on
    model.write_text(model_text(10), encoding="utf-8")
    good = active_model(store, loaded, NOW).model.version
    model.write_text(model_text(10).replace("points: 25", "points: [25]"), encoding="utf-8")
    with pytest.raises(ModelError, match="points"):
        active_model(store, loaded, NOW)
    with capture_logs() as logs:
        kept = active_model(store, loaded, NOW, strict=False)
    assert kept.model.version == good
    (event,) = logs
    assert event["event"] == "model.file_invalid" and event["active"] == good
    assert any("points" in problem for problem in event["problems"])
