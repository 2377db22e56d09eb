"""The speed-to-lead SLA's verdicts in isolation (syncer/qualify/sla.py): no server, no store."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from syncer.cli import main
from syncer.domain.types import Activity, ActivityType, Decision, Person, Profile, Stage
from syncer.qualify import ModelError, parse_model
from syncer.qualify.routing import RoutingState
from syncer.qualify.routing_model import Routing
from syncer.qualify.sla import QUEUE, REASSIGN, RECYCLE, Mark, episode_of, review
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
REPS = ["ana@x.test", "ben@x.test", "cy@x.test"]
QUEUE_USER = "queue@x.test"
EVERYONE = frozenset([*REPS, QUEUE_USER])


def routing(**sla: Any) -> Routing:
    spec: dict[str, Any] = {"work_within": "4h", "max_reassignments": 1,
                            "then_queue": QUEUE_USER, "recycle_after": "7d"}
    spec.update(sla)
    return Routing.model_validate({
        "account_match": {"enabled": False},
        "teams": [{"name": "sales", "reps": [{"email": e} for e in REPS]}],
        "sla": spec})


def decision(owner: str | None = "ana@x.test", stage: Stage = Stage.MQL) -> Decision:
    return Decision("kim@acme.example", 50, 30.0, 20.0, "B", stage, owner, (), "test@1")


def profile(owner: str | None = "ana@x.test", activities: tuple[Activity, ...] = (),
            **properties: str) -> Profile:
    person = Person("salesforce", "00Q1", "Lead", "kim@acme.example", company="Acme",
                    properties=properties)
    return Profile("kim@acme.example", (person,), activities, Stage.MQL, owner)


def routed(owner: str = "ana@x.test", at: datetime = T0) -> list[Mark]:
    return [Mark(owner, "round_robin", "sales", at)]


def state(**overrides: Any) -> RoutingState:
    values: dict[str, Any] = {"available": EVERYONE, "positions": {"sales": 1}}
    values.update(overrides)
    return RoutingState(**values)


def test_kept_before_the_sla_runs_out_and_reassigned_after() -> None:
    before = review(decision(), profile(), routed(), routing(), state(),
                    T0 + timedelta(hours=3, minutes=59))
    assert before.action == "keep" and before.decision == decision()
    after = review(decision(), profile(), routed(), routing(), state(), T0 + timedelta(hours=4))
    assert after.action == "reassign" and after.rule == REASSIGN
    assert after.owner == after.decision.owner_email == "ben@x.test"
    assert after.breached_owner == "ana@x.test"
    text = after.decision.reasons[-1].detail
    assert after.decision.reasons[-1].rule_id == "routing.sla_reassign"
    assert text.startswith("SLA: ana@x.test did not work this MQL within 4h (assigned "
                           "2026-11-20 09:00 UTC); reassigned to ben@x.test")
    assert text.endswith("reassignment 1 of 1")


def test_worked_people_are_never_reassigned() -> None:
    late = T0 + timedelta(days=2)
    meeting = Activity("salesforce", "00T1", "00Q1", ActivityType.MEETING,
                       T0 + timedelta(hours=1))
    old_meeting = Activity("salesforce", "00T0", "00Q1", ActivityType.MEETING,
                           T0 - timedelta(hours=1))
    cases = [
        (decision(), profile(activities=(meeting,)), routing()),
        (decision(stage=Stage.SAL), profile(), routing()),
        (decision("dora@x.test"), profile("dora@x.test"), routing()),
        (decision(), profile(lead_status="Working"),
         routing(worked_when={"field": "lead_status", "values": ["working"]})),
    ]
    for made, seen, rules in cases:
        assert review(made, seen, routed(), rules, state(), late).action in ("worked", "none")
    # a meeting before the owner got the person is not their work
    assert review(decision(), profile(activities=(old_meeting,)), routed(), routing(),
                  state(), late).action == "reassign"


def test_capped_and_absent_owners_are_skipped() -> None:
    rules = Routing.model_validate({
        "account_match": {"enabled": False},
        "teams": [{"name": "sales", "reps": [{"email": "ana@x.test"},
                                             {"email": "ben@x.test", "daily_cap": 2},
                                             {"email": "cy@x.test"},
                                             {"email": "dee@x.test"}]}],
        "out_of_office": [{"email": "cy@x.test", "start": date(2026, 11, 20),
                           "end": date(2026, 11, 30)}],
        "sla": {"work_within": "4h", "then_queue": QUEUE_USER}})
    seen = state(available=EVERYONE | {"dee@x.test"}, assigned_today={"ben@x.test": 2})
    verdict = review(decision(), profile(), routed(), rules, seen, T0 + timedelta(hours=5))
    assert verdict.owner == "dee@x.test"
    nobody = state(available=EVERYONE, assigned_today={"ben@x.test": 2})
    queued = review(decision(), profile(), routed(), rules, nobody, T0 + timedelta(hours=5))
    assert queued.action == "queue" and queued.owner == QUEUE_USER
    assert "nobody else in the routing can take it now" in queued.decision.reasons[-1].detail


def test_after_max_reassignments_to_the_queue_once() -> None:
    marks = [*routed(), Mark("ben@x.test", REASSIGN, "sales", T0 + timedelta(hours=4))]
    now = T0 + timedelta(hours=8, minutes=1)
    queued = review(decision("ben@x.test"), profile("ben@x.test"), marks, routing(), state(),
                    now)
    assert (queued.action, queued.rule, queued.owner) == ("queue", QUEUE, QUEUE_USER)
    assert queued.decision.reasons[-1].detail.endswith(
        "reassigned 1 of 1 times already; to queue@x.test")
    marks.append(Mark(QUEUE_USER, QUEUE, "sales", now))
    again = review(decision(QUEUE_USER), profile(QUEUE_USER), marks, routing(), state(),
                   now + timedelta(days=1))
    assert again.action == "keep"


def test_recycled_after_recycle_after_and_held_until_new_activity() -> None:
    late = T0 + timedelta(days=7)
    verdict = review(decision(), profile(), routed(), routing(), state(), late)
    assert (verdict.action, verdict.rule, verdict.decision.stage) == \
        ("recycle", RECYCLE, Stage.RECYCLED)
    assert verdict.decision.reasons[-1].rule_id == "lifecycle.recycle.sla"
    marks = [*routed(), Mark("ana@x.test", RECYCLE, "sales", late)]
    held = review(decision(), profile(), marks, routing(), state(), late + timedelta(days=1))
    assert held.action == "hold" and held.decision == verdict.decision  # nothing new to write
    form = Activity("hubspot", "f1", "1", ActivityType.FORM_FILL, late + timedelta(hours=2))
    back = review(decision(), profile(activities=(form,)), marks, routing(), state(),
                  late + timedelta(days=1))
    assert (back.action, back.decision.stage, back.owner) == \
        ("requalified", Stage.MQL, "ana@x.test")


def test_pending_reassignment_is_written_again() -> None:
    marks = [*routed(), Mark("ben@x.test", REASSIGN, "sales", T0 + timedelta(hours=4))]
    # the CRM still shows ana: the write of ben has not landed
    kept = review(decision("ana@x.test"), profile("ana@x.test"), marks, routing(), state(),
                  T0 + timedelta(hours=5))
    assert kept.action == "keep" and kept.decision.owner_email == "ben@x.test"


def test_episode_starts_at_each_routing_and_ends_at_recycle() -> None:
    marks = [*routed(), Mark("ben@x.test", REASSIGN, "sales", T0 + timedelta(hours=4)),
             Mark("ben@x.test", RECYCLE, "sales", T0 + timedelta(days=7))]
    assert episode_of(marks) is None
    episode = episode_of(marks[:2])
    assert episode is not None and episode.owners == ("ana@x.test", "ben@x.test")
    assert episode.reassignments == 1 and episode.started_at == T0


@pytest.mark.parametrize(("sla", "message"), [
    ({"work_within": "4 hours"}, "'4 hours' is not a duration"),
    ({"work_within": "4h", "recycle_after": "2h"}, "recycle_after (2h) must be longer"),
    ({"work_within": "4h", "teams": {"nope": {"work_within": "1h"}}},
     "sla.teams names team 'nope'"),
    ({"work_within": "4h", "worked_when": {"field": "lead_status"}},
     "`field` and `values` go together"),
    ({"work_within": "4h", "worked_when": {"activities": ["meetin"]}},
     "did you mean 'meeting'?"),
])
def test_bad_sla_is_explained(sla: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        routing(**{"then_queue": QUEUE_USER, "recycle_after": None, **sla})
    assert message in str(raised.value)


def test_model_error_names_the_field() -> None:
    data = yaml.safe_load(EXAMPLE_MODEL.read_text())
    data["routing"]["sla"] = {"work_within": "soon", "then_queue": QUEUE_USER}
    with pytest.raises(ModelError) as raised:
        parse_model(data)
    assert "routing.sla.work_within" in str(raised.value)
    assert "Fix: a positive number and a unit" in str(raised.value)


def test_check_config_names_the_bad_sla_field(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    model = yaml.safe_load(EXAMPLE_MODEL.read_text())
    model["routing"]["sla"] = {"work_within": "4h", "max_reassignments": -1,
                               "then_queue": QUEUE_USER}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config["model"] = str(tmp_path / "model.yaml")
    config["state"] = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    (tmp_path / "syncer.yaml").write_text(yaml.safe_dump(config))
    assert main(["check-config", "--config", str(tmp_path / "syncer.yaml")]) == 2
    error = capsys.readouterr().err
    assert "routing.sla.max_reassignments: must be >= 0, got -1. Fix: use a number >= 0" \
        in error
