"""Routing end to end: both sandbox CRMs, the real clients, the whole pipeline."""

from __future__ import annotations

import collections
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from connectors.sandbox.world import World
from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.types import ActivityType
from syncer.run.pipeline import run_sync
from syncer.store import routing as routing_store
from syncer.store import tables as t
from tests.conftest import (
    EXAMPLE_MODEL,
    NOW,
    Sandboxes,
    running_sandboxes,
    sandbox_config_data,
    sync_once,
    write_config,
)
from tests.sandbox_control import control

EMEA = ["United Kingdom", "Germany", "France", "Netherlands", "Sweden", "Spain", "Nigeria"]
HAND_RAISES = {ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES,
               ActivityType.PRICING_REQUEST}
REPS = {"dana.whitfield": 2, "marco.bellini": 1, "keiko.arai": 1, "samuel.osei": 2,
        "ingrid.holm": 1, "rafael.duarte": 1, "olga.petrova": 1, "priya.raman": 1}


def email(name: str) -> str:
    return f"{name}@syncer-sandbox.test"


def model_file(tmp_path: Path, routing: dict[str, Any], everyone_qualifies: bool) -> str:
    model: dict[str, Any] = yaml.safe_load(EXAMPLE_MODEL.read_text())
    model["routing"] = routing
    if everyone_qualifies:
        model["qualification"] = {"mql_score": -1000}
        model.pop("lifecycle", None)
    path = tmp_path / f"model-{len(list(tmp_path.glob('model-*')))}.yaml"
    path.write_text(yaml.safe_dump(model))
    return str(path)


def configure(tmp_path: Path, name: str, boxes: Sandboxes, model: str,
              monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    data = sandbox_config_data(boxes, f"sqlite:///{tmp_path / (name + '.db')}", monkeypatch)
    data["model"] = model
    return write_config(tmp_path / f"{name}.yaml", data)


def assignments(loaded: LoadedConfig) -> list[dict[str, Any]]:
    with Runtime(loaded) as runtime:
        return routing_store.assignment_rows(runtime.require_store())


def test_account_match_beats_territory_beats_round_robin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(seed=11, size=400, now=NOW)
    routing = {
        "regions": {"EMEA": EMEA},
        "territories": [{"id": "emea", "match": {"region": ["EMEA"]}, "team": "emea"}],
        "teams": [{"name": "emea", "reps": [{"email": email("keiko.arai")},
                                            {"email": email("ingrid.holm")}]},
                  {"name": "global", "reps": [{"email": email(n)} for n in
                                              ("marco.bellini", "samuel.osei", "rafael.duarte")]}],
        "default_team": "global",
    }
    with running_sandboxes(world) as boxes:
        hubspot = {r["email"]: r for r in boxes.hubspot.records()}
        people = world.people()
        by_domain = collections.defaultdict(list)
        for person in people:
            if person.in_hubspot:
                by_domain[person.domain].append(person)
        # An EMEA hand-raiser whose colleague is already owned by dana (a global-team rep).
        hand_raiser, colleague = next(
            (p, q) for p in people for q in by_domain[p.domain]
            if p.in_hubspot and not p.in_salesforce and p.country in EMEA and q is not p
            and any(a.type in HAND_RAISES and a.occurred_at > NOW - timedelta(days=60)
                    for a in p.activities)
            and not hubspot[p.email]["hubspot_owner_id"] and p.domain.endswith(".example"))
        loaded = configure(tmp_path, "precedence", boxes, model_file(tmp_path, routing, False),
                           monkeypatch)
        with Runtime(loaded, open_store=False) as runtime:
            owners = {o.email: o.owner_id for o in runtime.connectors["hubspot"].owners()}
        control(boxes.hubspot, "edit", id=hubspot[colleague.email]["id"],  # type: ignore[arg-type]
                field="hubspot_owner_id", value=owners[email("dana.whitfield")])
        sync_once(loaded)
        rows = {row["person_key"]: row for row in assignments(loaded)}
        records = {r["email"]: r for r in boxes.hubspot.records()}
    assert rows[hand_raiser.email]["rule"] == "account_match"
    assert rows[hand_raiser.email]["owner_email"] == email("dana.whitfield")
    assert records[hand_raiser.email]["hubspot_owner_id"] == owners[email("dana.whitfield")]
    assert records[hand_raiser.email]["syncer_owner_reason"] == \
        f"account match (domain {hand_raiser.domain}): {email('dana.whitfield')}"
    countries = {p.email: p.country for p in people}
    by_rule = collections.Counter(row["rule"] for row in rows.values())
    assert by_rule["account_match"] >= 1 and by_rule["round_robin"] >= 10
    for key, row in rows.items():
        if row["rule"] == "round_robin":
            assert (row["team"] == "emea") == (countries[key] in EMEA), key


@pytest.mark.slow
def test_rotation_is_fair_over_1000_and_survives_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,320 people: those a rep already owns (the world's opportunities and customers
    # among them) are not routed, and over 1,000 must be.
    world = World(seed=5, size=1320, now=NOW)
    routing = {"account_match": {"enabled": False},
               "reps": [{"email": email(n), "weight": w} for n, w in REPS.items()]}
    model = model_file(tmp_path, routing, everyone_qualifies=True)
    with running_sandboxes(world) as boxes:
        loaded = configure(tmp_path, "restarted", boxes, model, monkeypatch)
        with Runtime(loaded) as runtime:
            engine = runtime.require_store().engine

            def assigned_some() -> bool:
                with engine.connect() as connection:
                    return bool(connection.execute(
                        select(func.count()).select_from(t.assignments)).scalar())

            stopped = run_sync(loaded, runtime.require_store(), runtime.connectors,
                               runtime.model, NOW, should_stop=assigned_some)
        first_half = len(assignments(loaded))
        finished = sync_once(loaded)  # a new process would do the same: all state is stored
        restarted = {r["person_key"]: r["owner_email"] for r in assignments(loaded)}
    assert stopped.owners_assigned == first_half and 0 < first_half < len(restarted)
    assert finished.owners_assigned == len(restarted) - first_half

    with running_sandboxes(World(seed=5, size=1320, now=NOW)) as boxes:
        straight = configure(tmp_path, "straight", boxes, model, monkeypatch)
        sync_once(straight)
        uninterrupted = {r["person_key"]: r["owner_email"] for r in assignments(straight)}
    assert restarted == uninterrupted

    counts = collections.Counter(restarted.values())
    total = sum(counts.values())
    assert total >= 1000
    active_weight = sum(w for n, w in REPS.items() if n != "olga.petrova")
    assert email("olga.petrova") not in counts  # inactive in the CRMs
    for name, weight in REPS.items():
        if name != "olga.petrova":
            assert abs(counts[email(name)] - total * weight / active_weight) <= weight + 1, name


def test_caps_inactive_reps_fallback_and_speed_to_lead(
        sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    capped = ["marco.bellini", "keiko.arai", "olga.petrova"]
    routing = {"account_match": {"enabled": False},
               "reps": [{"email": email(n), "daily_cap": 5} for n in capped],
               "fallback_owner": email("priya.raman")}
    loaded = configure(tmp_path, "caps", sandboxes, model_file(tmp_path, routing, True),
                       monkeypatch)
    summary = sync_once(loaded)
    rows = assignments(loaded)
    counts = collections.Counter(row["owner_email"] for row in rows)
    assert counts[email("marco.bellini")] == 5 and counts[email("keiko.arai")] == 5
    assert email("olga.petrova") not in counts
    assert counts[email("priya.raman")] == len(rows) - 10 > 0
    assert {row["rule"] for row in rows if row["owner_email"] == email("priya.raman")} == \
        {"fallback"}
    assert summary.owners_assigned == len(rows)
    # Speed to lead: from the qualifying activity to the owner written in a CRM.
    for row in rows:
        assert row["owner_written_at"] == NOW
        assert row["qualified_at"] <= row["owner_written_at"]
    with Runtime(loaded) as runtime:
        decisions = runtime.require_store().decisions([r["person_key"] for r in rows])
    for row in rows:
        evidence = [r.evidence_at for r in decisions[row["person_key"]].reasons if r.evidence_at]
        assert row["qualified_at"] == (max(evidence) if evidence else NOW)
    assert main(["report", "--state", loaded.state_url]) == 0
    report = capsys.readouterr().out
    assert "default" in report and email("priya.raman") in report
    # A second run reassigns nobody: every qualified person has an owner now.
    assert sync_once(loaded).owners_assigned == 0
