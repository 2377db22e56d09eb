"""`syncer import FILE.csv`: good rows kept and re-qualified into both CRMs, bad rows named
by line and field, and a second import of the same file changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from syncer.cli.main import main
from syncer.domain.config import LoadedConfig
from syncer.domain.types import Stage
from syncer.store import tables
from syncer.store.repository import Store
from tests.conftest import Sandboxes, sync_once


def people_in_both(loaded: LoadedConfig, count: int) -> list[str]:
    """Emails of leads without an owner in both CRMs, after the first sync."""
    store = Store.open(loaded.state_url)
    try:
        keys = store.person_keys()
        decisions = store.decisions(keys)
        people = store.load_people(keys)
        return [k for k in keys
                if {r.source for r in people[k][0]} == {"hubspot", "salesforce"}
                and decisions[k].stage is Stage.LEAD
                and decisions[k].owner_email is None][:count]
    finally:
        store.close()


def state_counts(loaded: LoadedConfig) -> tuple[int, int, int, int]:
    """(activities, audit rows, runs, webinar records) in the state."""
    store = Store.open(loaded.state_url)
    try:
        with store.engine.connect() as connection:
            def count(table: object, *where: object) -> int:
                query = select(func.count()).select_from(table)  # type: ignore[arg-type]
                return int(connection.execute(query.where(*where)).scalar() or 0)
            return (count(tables.activities), count(tables.audit), count(tables.runs),
                    count(tables.records, tables.records.c.connector == "webinar"))
    finally:
        store.close()


def api_calls(sandboxes: Sandboxes) -> int:
    """Every request either sandbox CRM has served."""
    return sum(sum(s.call_counts.values())  # type: ignore[attr-defined]
               for s in (sandboxes.hubspot, sandboxes.salesforce))


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_import_keeps_good_rows_names_bad_ones_and_is_idempotent(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sync_once(sandbox_config)
    first, second = people_in_both(sandbox_config, 2)
    when = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    csv = tmp_path / "webinar.csv"
    csv.write_text(
        "Email Address,First,Company,What,When\n"
        f"{first.upper()},Ada,Acme,demo_request,{when}\n"
        f"not-an-email,Bob,Acme,webinar_attendance,{when}\n"
        f"{second},Cy,Initech,webinar_attendance,{when}\n"
        f"new.person@example.org,Di,Globex,dance,{when}\n"
        f"new.person@example.org,Di,Globex,webinar_attendance,yesterday-ish\n"
        f"fresh.face@example.org,Ed,Umbrella,webinar_attendance,{when}\n", encoding="utf-8")
    args = ["import", str(csv), "--source", "webinar", "--config", str(sandbox_config.path),
            "--map", "Email Address=email,First=first_name,Company=company,What=activity,"
                     "When=occurred_at"]
    capsys.readouterr()
    assert main(args) == 1  # a bad row: exit 1, the good rows imported all the same
    out, err = capsys.readouterr()
    assert "line 3: person.email" in err
    assert "line 5: activity.type: 'dance'" in err
    assert "line 6: activity.occurred_at" in err
    assert "6 rows, 3 good, 3 bad" in out and "3 new" in out

    store = Store.open(sandbox_config.state_url)
    decision = store.decisions([first])[first]
    assert decision.stage is Stage.SQL and decision.owner_email is not None
    people = store.load_people([first, second, "fresh.face@example.org"])
    assert {r.source for r in people[first][0]} == {"hubspot", "salesforce", "webinar"}
    assert any(a.source == "webinar" for a in people[second][1])
    # someone no CRM holds is kept as a record of the list's source (the creation gate,
    # which the example config leaves off, decides whether a CRM gets them)
    assert [r.source for r in people["fresh.face@example.org"][0]] == ["webinar"]
    hub = {r["email"].lower(): r for r in sandboxes.hubspot.records() if r.get("email")}
    assert hub[first]["lifecyclestage"] == "salesqualifiedlead"
    assert hub[first]["hubspot_owner_id"]
    store.close()

    before = state_counts(sandbox_config)
    calls = api_calls(sandboxes)
    assert main(args) == 1
    out, _ = capsys.readouterr()
    assert "0 new, 3 already imported" in out and "run " not in out
    assert state_counts(sandbox_config) == before  # no activity, audit row or run more
    assert api_calls(sandboxes) == calls  # not one request to either CRM


def test_a_dry_run_checks_and_stores_nothing(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL
    config = tmp_path / "syncer.yaml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace(
        "model: model.example.yaml", f"model: {EXAMPLE_MODEL}").replace(
        "sqlite:///.syncer/state.db", f"sqlite:///{tmp_path / 'state.db'}"))
    csv = tmp_path / "list.csv"
    csv.write_text("email,activity,occurred_at\nada@example.com,newsletter_signup,"
                   "2026-12-01T10:00:00Z\n")
    assert main(["import", str(csv), "--source", "fair", "--config", str(config),
                 "--dry-run"]) == 0
    out, _ = capsys.readouterr()
    assert "1 rows, 1 good, 0 bad" in out and "dry run" in out
    assert not (tmp_path / "state.db").exists()
    assert main(["import", str(csv), "--source", "hubspot", "--config", str(config)]) != 0
    assert "not a connector's name" in capsys.readouterr().err
