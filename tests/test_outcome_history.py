"""Outcomes: the sandbox world's planted signal, and history rows built from the state store
(outcome, as_of, activities only before it) with their CSV export."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.outcomes import SOURCE_BY_KEY, log_odds
from connectors.sandbox.world import World, WorldPerson
from syncer.cli import main
from syncer.domain.config import LoadedConfig
from syncer.domain.types import Activity, ActivityType, Person, Profile, Stage
from syncer.qualify import load_model, qualify
from syncer.run.outcome_history import (
    STANDARD_FIELDS,
    HistoryRow,
    activity_column,
    export_history_csv,
    history_rows,
)
from syncer.store import stage_history
from syncer.store.repository import Store
from tests.conftest import (
    EXAMPLE_MODEL,
    NOW,
    Sandboxes,
    running_sandboxes,
    sandbox_config_data,
    sync_once,
    write_config,
)

HAND_RAISES = {ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES,
               ActivityType.PRICING_REQUEST}


def rate(people: list[tuple[WorldPerson, bool]]) -> float:
    assert people
    return sum(reached for _, reached in people) / len(people)


# -- the world -----------------------------------------------------------------------------
def test_world_outcomes_follow_the_planted_signal() -> None:
    world = World(seed=2, size=12_000, now=NOW)
    model = load_model(EXAMPLE_MODEL)
    people = [(p, world.outcome_of(p).stage is not None) for p in world.people()]
    assert 0.10 <= rate(people) <= 0.20

    def of_sources(*keys: str) -> float:
        return rate([(p, r) for p, r in people if p.source in keys])
    assert of_sources("referral", "partner") > 3 * of_sources("purchased_list")
    assert of_sources("purchased_list") < rate(people) / 2

    grades: dict[str, list[tuple[WorldPerson, bool]]] = {}
    for person, reached in people:
        record = Person(source="world", record_id=str(person.index), object_type="contact",
                        email=person.email, title=person.title or None,
                        company=person.company, industry=person.industry or None,
                        employees=person.employees, country=person.country or None)
        grade = qualify(Profile(person.email, (record,), ()), model, NOW).fit_grade
        grades.setdefault(grade, []).append((person, reached))
    assert rate(grades["A"]) > 2.5 * rate(grades["D"])

    raised = [(p, r) for p, r in people if HAND_RAISES & {a.type for a in p.activities}]
    quiet = [(p, r) for p, r in people if not p.activities]
    assert rate(raised) > 2 * rate(quiet)


def test_outcomes_are_deterministic_and_come_after_every_activity() -> None:
    first, again = World(seed=4, size=400, now=NOW), World(seed=4, size=400, now=NOW)
    for i in range(0, 400, 3):
        person = first.person(i)
        outcome = first.outcome_of(person)
        assert outcome == again.outcome(i)
        kinds = {a.type for a in person.activities}
        assert outcome.log_odds == log_odds(person, kinds, outcome.visits)
        assert again.person_and_outcome(i) == (
            dataclasses.replace(person, activities=()), outcome)
        assert outcome.source is SOURCE_BY_KEY[person.source]
        if outcome.at is not None:
            assert all(a.occurred_at <= outcome.at <= NOW for a in person.activities)


# -- history from the store ----------------------------------------------------------------
@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_history_after_a_sandbox_sync_has_the_worlds_outcomes(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, tmp_path: Path) -> None:
    sync_once(sandbox_config)
    store = Store.open(sandbox_config.state_url)
    try:
        rows = list(history_rows(store, sandbox_config))
    finally:
        store.close()
    world = sandboxes.world
    reached = {p.email.lower() for p in world.people() if world.outcome_of(p).stage}
    assert {row.id for row in rows if row.outcome} == reached
    assert len(rows) == len({p.email.lower() for p in world.people()})
    for row in rows:
        assert all(a.occurred_at < row.as_of for a in row.profile.activities)
        assert all(not r.crm_values for r in row.profile.records)
        assert row.profile.current_stage is None
    assert any(row.profile.activities for row in rows if row.outcome)
    # HubSpot dates the outcome itself (hs_lifecyclestage_*_date): as_of is that moment,
    # not the sync; the dates are evidence of the outcome, never a feature.
    dated = {p.email.lower(): at for p in world.people()
             if p.in_hubspot and (at := world.outcome_of(p).at) is not None}
    by_id = {row.id: row for row in rows}
    assert dated and all(abs(by_id[key].as_of - at) < timedelta(seconds=1)
                         for key, at in dated.items())
    assert all("opportunity_at" not in r.properties for row in rows
               for r in row.profile.records)
    sources = {r.properties.get("source") for row in rows for r in row.profile.records}
    assert {"REFERRALS", "Purchased List"} <= sources

    path = tmp_path / "history.csv"
    assert export_history_csv(rows, path) == len(rows)
    with path.open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    header = list(table[0])
    assert header[:3] == ["id", "outcome", "as_of"]
    assert [name for name in header if name in STANDARD_FIELDS] == list(STANDARD_FIELDS)
    assert {"source", "latest_source", "visits", "page_views"} <= set(header)
    assert not {"opportunity_at", "customer_at"} & set(header)
    assert activity_column(ActivityType.PAGE_VIEW) == "page_view_90d" in header
    assert sum(int(r["outcome"]) for r in table) == len(reached)
    assert all(r["visits"].isdigit() for r in table if r["visits"])


def activity(record_id: str, number: int, kind: ActivityType, at: datetime) -> Activity:
    return Activity("hubspot", f"a{number}", record_id, kind, at, {"duration": "30"})


def test_history_keeps_only_what_stood_before_the_outcome(sqlite_url: str,
                                                         tmp_path: Path) -> None:
    """A person who became an opportunity on day 10 keeps the activities before it, and the
    CSV counts only the 90 days before; someone who did not is dated at their pull."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    won_at, pulled = start + timedelta(days=100), start + timedelta(days=200)
    buyer = Person("hubspot", "1", "contact", "buyer@acme.example", title="VP Sales",
                   crm_values={"lifecyclestage": "opportunity"},
                   properties={"source": "REFERRALS", "visits": 4.0, "outcome": "lost"})
    other = Person("hubspot", "2", "contact", "other@acme.example", title="Intern")
    dated = Person("hubspot", "3", "contact", "dated@acme.example", properties={
        "customer_at": (start + timedelta(days=40)).isoformat(), "opportunity_at": None})
    store = Store.open(sqlite_url)
    try:
        with store.transaction() as tx:
            store.save_records(tx, [buyer, other, dated], [
                "buyer@acme.example", "other@acme.example", "dated@acme.example"], pulled)
            store.save_activities(tx, [
                activity("1", 1, ActivityType.PAGE_VIEW, start + timedelta(days=5)),
                activity("1", 2, ActivityType.PAGE_VIEW, start + timedelta(days=50)),
                activity("1", 3, ActivityType.DEMO_REQUEST, start + timedelta(days=99)),
                activity("1", 4, ActivityType.PAGE_VIEW, start + timedelta(days=150)),
                activity("2", 5, ActivityType.EMAIL_OPEN, start + timedelta(days=150)),
                activity("3", 6, ActivityType.EMAIL_OPEN, start + timedelta(days=30)),
                activity("3", 7, ActivityType.EMAIL_OPEN, start + timedelta(days=45))])
            stage_history.append(tx, [_stage_row("buyer@acme.example", Stage.MQL,
                                                 start + timedelta(days=60)),
                                      _stage_row("buyer@acme.example", Stage.OPPORTUNITY,
                                                 won_at)])
        rows = {row.id: row for row in history_rows(store)}
    finally:
        store.close()
    assert [(r.id, r.outcome, r.as_of) for r in rows.values()] == [
        ("buyer@acme.example", True, won_at), ("dated@acme.example", True,
                                               start + timedelta(days=40)),
        ("other@acme.example", False, pulled)]
    assert [a.source_id for a in rows["dated@acme.example"].profile.activities] == ["a6"]
    assert rows["dated@acme.example"].profile.records[0].properties == {}
    won = rows["buyer@acme.example"]
    assert [a.source_id for a in won.profile.activities] == ["a1", "a2", "a3"]
    assert won.profile.records[0].properties == {"source": "REFERRALS", "visits": 4.0,
                                                 "outcome": "lost"}
    assert isinstance(won, HistoryRow)

    path = tmp_path / "rows.csv"
    export_history_csv(rows.values(), path)
    with path.open(encoding="utf-8") as handle:
        table = {r["id"]: r for r in csv.DictReader(handle)}
    assert table["buyer@acme.example"]["outcome"] == "1"
    assert table["buyer@acme.example"]["as_of"] == won_at.isoformat()
    assert table["buyer@acme.example"]["page_view_90d"] == "1"  # day 5 is too long before
    assert table["buyer@acme.example"]["demo_request_90d"] == "1"
    assert table["buyer@acme.example"]["visits"] == "4"
    assert table["buyer@acme.example"]["title"] == "VP Sales"
    assert table["buyer@acme.example"]["crm_outcome"] == "lost"  # never the outcome column
    other_row = table["other@acme.example"]
    assert (other_row["outcome"], other_row["source"], other_row["email_open_90d"]) == (
        "0", "", "1")


def _stage_row(key: str, stage: Stage, at: datetime) -> dict[str, Any]:
    return {"person_key": key, "from_stage": None, "to_stage": stage.value, "at": at,
            "cause": "crm", "model_version": "test", "run_id": "r1", "detail": None}


@pytest.mark.slow
def test_calibration_on_store_history_finds_the_planted_signal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Sync a sandbox world, export its history, calibrate: the learned points rank the
    sources, titles and webinar attendance the way sandbox_outcomes planted them."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    with running_sandboxes(World(seed=21, size=1200, now=NOW)) as boxes:
        loaded = write_config(tmp_path / "syncer.yaml", sandbox_config_data(
            boxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch))
        sync_once(loaded)
    store = Store.open(loaded.state_url)
    try:
        history = tmp_path / "history.csv"
        export_history_csv(history_rows(store, loaded), history)
    finally:
        store.close()
    learned = tmp_path / "learned.yaml"
    capsys.readouterr()  # the sync's log lines
    with history.open(encoding="utf-8") as handle:
        times = {"as_of", "first_seen"} & set(next(csv.reader(handle)))
    excluded = ",".join(["email", "first_name", "last_name", "company", *sorted(times)])
    assert main(["model", "calibrate", "--history", str(history), "--outcome", "outcome",
                 "--exclude", excluded, "--output", str(learned), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["auc_test"] > 0.65
    rules = {rule["id"]: rule for rule in yaml.safe_load(learned.read_text())["fit"]["rules"]}

    def points(rule: str, *values: str) -> float:
        table = rules[rule]["table"]
        found = [table[v] for v in values if v in table]
        assert found, (rule, values)
        return float(sum(found)) / len(found)
    referrals = points("source", "REFERRALS", "Customer Referral", "Partner Referral")
    assert referrals > points("source", "Purchased List", "OFFLINE") + 10
    assert points("title", "VP Sales", "VP of Marketing", "Founder & CEO") > \
        points("title", "Intern", "Student") + 10

