"""Named scores: the model's `scores:` section (validation in the admin's terms, what a
named score inherits, the model version), the ledger of every score (one line per counted
activity with its decay, caps and rounding as lines of their own), writing named scores to
CRM fields, storing them with the decision, and `syncer explain` showing them."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pathlib
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig, load_config
from syncer.domain.types import (
    Activity,
    ActivityType,
    Decision,
    LedgerEntry,
    Person,
    Profile,
    Stage,
)
from syncer.qualify import ModelError, load_model, parse_model, qualify
from syncer.qualify.activity_points import ledger_line
from syncer.qualify.cards import ROUNDING
from syncer.run.diff import (
    OwnerDirectory,
    check_score_fields,
    desired_values,
    number_text,
    score_values,
)
from syncer.run.pipeline import run_sync
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_MODEL, NOW, Sandboxes, sandbox_config_data, write_config

A = ActivityType
AT = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)

BASE: dict[str, Any] = {
    "name": "lines",
    "fit": {"rules": [{"id": "vp", "field": "title", "contains": "vp", "points": 15},
                      {"id": "software", "field": "industry", "equals": "Software",
                       "points": 7.5}],
            "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": 10},
                       {"grade": "C", "min": -1000}]},
    "engagement": {"half_life_days": 10, "lookback_days": 120, "rules": [
        {"id": "pricing", "activity": "pricing_page_view", "points": 10},
        {"id": "views", "activity": "page_view", "points": 2, "max_points": 5},
        {"id": "quiet", "inactive_days": 60, "points": -4}]},
    "qualification": {"mql_score": 30},
    "routing": {"reps": [{"email": "dana@x.test"}]},
    "scores": [
        {"name": "analytics", "engagement": {"rules": [
            {"id": "analytics_pages", "activity": "page_view", "where": {"url": "/analytics"},
             "points": 6, "max_count": 2},
            {"id": "webinar", "activity": "webinar_attendance", "points": 9}]}},
        {"name": "enterprise", "fit": {
            "rules": [{"id": "big", "field": "employees", "min": 1000, "points": 30}],
            "grades": [{"grade": "E1", "min": 30}, {"grade": "E2", "min": 0}]}},
    ],
}


def raw(**changes: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(changes))
    return data


def act(kind: ActivityType, days_ago: float, n: int = 0, **attributes: str) -> Activity:
    return Activity("hubspot", f"{kind.value}-{n}", "1", kind,
                    AT - timedelta(days=days_ago), attributes)


def person(title: str = "VP Marketing", employees: int | None = 5000,
           industry: str | None = "Software") -> Profile:
    return Profile("kim@acme.example",
                   (Person("hubspot", "1", "contact", "kim@acme.example", title=title,
                           employees=employees, industry=industry),), ())


def with_activities(profile: Profile, *activities: Activity,
                    current: Stage | None = None) -> Profile:
    return Profile(profile.key, profile.records, activities, current)


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ModelError) as info:
        parse_model(data, source="lines.yaml")
    return list(info.value.problems)


def total_of(ledger: tuple[LedgerEntry, ...]) -> float:
    return math.fsum(entry.points for entry in ledger)


# ---------------------------------------------------------------- the model section


def test_named_scores_load_and_inherit_what_they_leave_out() -> None:
    model = parse_model(raw())
    assert [s.name for s in model.scores] == ["analytics", "enterprise"]
    assert model.primary_score == "primary"
    (analytics, fit_a, engagement_a), (enterprise, fit_e, engagement_e) = model.score_sections
    assert (analytics.name, enterprise.name) == ("analytics", "enterprise")
    assert fit_a is None and engagement_e is None  # the primary's, reused as they are
    assert engagement_a is not None and fit_e is not None
    assert engagement_a.half_life_days == 10 and engagement_a.lookback_days == 120
    assert [r.id for r in engagement_a.rules] == ["analytics_pages", "webinar"]
    assert [b.grade for b in fit_e.grades] == ["E1", "E2"]


def test_score_errors_name_the_score_the_rule_and_a_fix() -> None:
    data = raw()
    data["scores"][0]["engagement"]["rules"][1]["pionts"] = 3
    (problem,) = problems(data)
    assert problem.startswith("scores[0].engagement.rules[1].pionts (score 'analytics') "
                              "(rule 'webinar'): is not a known setting. Fix:")
    assert "did you mean `points`?" in problem

    data = raw()
    data["scores"][1]["name"] = "analytics"
    (problem,) = problems(data)
    assert "score name 'analytics' is used more than once" in problem and "Fix:" in problem

    (problem,) = problems(raw(primary_score="analytics"))
    assert "'analytics' is used more than once (the primary score is 'analytics'" in problem

    (problem,) = problems(raw(scores=[{"name": "copy"}]))
    assert "score 'copy' has neither `fit` nor `engagement`" in problem and "Fix:" in problem

    (problem,) = problems(raw(scores=[{"name": "x", "engagement": {
        "bands": [{"band": "1", "min": 0}], "rules": []}}]))
    assert problem.startswith("scores[0].engagement.bands (score 'x'): is not a known setting")

    (problem,) = problems(raw(scores=[{"name": "bad name!", "fit": {"rules": []}}]))
    assert problem.startswith("scores[0].name (score 'bad name!')")


def test_a_named_inactivity_rule_needs_something_to_count_as_engagement() -> None:
    data = raw(engagement={"rules": [{"id": "opens", "activity": "email_open", "points": -1}]},
               scores=[{"name": "quiet", "engagement": {"rules": [
                   {"id": "idle", "inactive_days": 30, "points": -5}]}}])
    (problem,) = problems(data)
    assert "scores[0] (quiet).engagement.rules (idle) measure time since the last" in problem
    assert "Fix: list its engagement.engaged_activities" in problem


def test_line_numbers_point_into_the_scores_section(tmp_path: pathlib.Path) -> None:
    original = EXAMPLE_MODEL.read_text(encoding="utf-8")
    assert original.count("points: 12, max_count: 1}") == 1
    text = original.replace("points: 12, max_count: 1}", "points: twelve, max_count: 1}")
    path = tmp_path / "model.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(n for n, value in enumerate(text.splitlines(), 1) if "twelve" in value)
    with pytest.raises(ModelError) as info:
        load_model(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"line {line}, scores[0].engagement.rules[2].points "
                              "(score 'lead_routing') (rule 'routing_ebook')")


def test_version_changes_with_the_scores_but_not_for_models_without_them() -> None:
    plain = copy.deepcopy(BASE)
    del plain["scores"]
    version = parse_model(plain).version
    # Writing the new settings' defaults is the same model, with the same version as before.
    assert parse_model({**plain, "scores": [], "primary_score": "primary"}).version == version
    explicit = copy.deepcopy(plain)
    explicit["qualification"]["hysteresis"] = 0
    assert parse_model(explicit).version == version
    named = parse_model(raw()).version
    assert named != version
    changed = raw()
    changed["scores"][0]["engagement"]["rules"][1]["points"] = 8
    assert parse_model(changed).version != named
    assert parse_model(raw(primary_score="core")).version != named


def test_model_with_scores_survives_pickle_and_copy() -> None:
    model = parse_model(raw())
    profile = with_activities(person(), act(A.PAGE_VIEW, 1, url="https://x.test/analytics"))
    for clone in (pickle.loads(pickle.dumps(model)), model.model_copy()):
        assert clone.version == model.version
        assert qualify(profile, clone, AT) == qualify(profile, model, AT)


# ---------------------------------------------------------------- cards and ledgers


def test_every_score_has_a_card_primary_first_and_only_the_primary_decides() -> None:
    profile = with_activities(
        person(), act(A.PRICING_PAGE_VIEW, 0), act(A.PAGE_VIEW, 2, 1, url="https://x.test/"),
        act(A.PAGE_VIEW, 3, 2, url="https://x.test/analytics"),
        act(A.WEBINAR_ATTENDANCE, 20, 3, campaign="Analytics live"))
    decision = qualify(profile, parse_model(raw()), AT)
    primary, analytics, enterprise = decision.scores
    assert (primary.name, primary.total, primary.fit, primary.engagement, primary.grade) == (
        "primary", decision.score, decision.fit_points, decision.engagement_points,
        decision.fit_grade)
    plain = copy.deepcopy(BASE)
    del plain["scores"]
    without = qualify(profile, parse_model(plain), AT)
    assert (decision.stage, decision.score, decision.reasons) == (
        without.stage, without.score, without.reasons)
    assert without.scores == (primary,)

    # analytics: the primary's fit, its own engagement with the primary's half-life.
    assert analytics.fit == primary.fit == 22.5 and analytics.grade == primary.grade == "A"
    assert [e.rule_id for e in analytics.ledger if e.rule_id.startswith("fit.")] == [
        "fit.vp", "fit.software"]
    lines = {e.rule_id: e for e in analytics.ledger if e.rule_id.startswith("engagement.")}
    assert set(lines) == {"engagement.analytics_pages", "engagement.webinar"}
    webinar = lines["engagement.webinar"]
    assert webinar.decay == pytest.approx(0.5 ** 2)  # 20 days, half-life 10
    assert webinar.points == pytest.approx(9 * 0.25)
    assert webinar.activity_id == "hubspot:webinar_attendance-3"
    assert webinar.at == AT - timedelta(days=20)
    assert webinar.detail == "webinar_attendance 'Analytics live'"
    assert analytics.engagement == pytest.approx(6 * 0.5 ** 0.3 + 9 * 0.25)
    # enterprise: its own fit and grades, the primary's engagement lines.
    assert enterprise.fit == 30 and enterprise.grade == "E1"
    assert enterprise.engagement == primary.engagement
    assert [e for e in enterprise.ledger if e.rule_id.startswith("engagement.")] == [
        e for e in primary.ledger if e.rule_id.startswith("engagement.")]
    for card in decision.scores:
        assert card.total == round(card.fit + card.engagement)
        assert total_of(card.ledger) == pytest.approx(card.total, abs=1e-9)


def test_caps_and_rounding_are_lines_of_their_own() -> None:
    """views: 2 points each, at most 5: three fresh views give 2 + 2 + 1 (a cap line of -1)."""
    model = parse_model(raw(engagement={"rules": [
        {"id": "views", "activity": "page_view", "points": 2, "max_points": 5},
        {"id": "clicks", "activity": "email_click", "points": 0.3,
         "max_points_per": {"days": 7, "points": 0.5}}]}))
    profile = with_activities(person(industry=None), *(
        act(A.PAGE_VIEW, 0, n, url="https://x.test/") for n in range(3)),
        act(A.EMAIL_CLICK, 0, 10), act(A.EMAIL_CLICK, 0, 11))
    primary = qualify(profile, model, AT).scores[0]
    views = [e for e in primary.ledger if e.rule_id == "engagement.views"]
    assert [(e.points, e.activity_id is None) for e in views] == [
        (2.0, False), (2.0, False), (2.0, False), (-1.0, True)]
    assert views[-1].detail == "cap: at most 5 in total"
    clicks = [e for e in primary.ledger if e.rule_id == "engagement.clicks"]
    assert [e.points for e in clicks[:2]] == [0.3, 0.3]
    assert clicks[2].detail == "cap: at most 0.5 per 7 days"
    assert clicks[2].points == pytest.approx(-0.1)
    assert primary.engagement == 5.5 and primary.fit == 15 and primary.total == 20
    rounding = primary.ledger[-1]
    assert (rounding.rule_id, rounding.detail) == (ROUNDING, "fit + engagement rounded to 20")
    assert rounding.points == pytest.approx(-0.5)
    assert total_of(primary.ledger) == pytest.approx(20, abs=1e-9)


def test_inactivity_and_negative_signals_are_their_own_lines() -> None:
    model = parse_model(raw(engagement={"rules": [
        {"id": "unsubscribe", "activity": "unsubscribe", "points": -25},
        {"id": "views", "activity": "page_view", "points": 2},
        {"id": "quiet", "inactive_days": 60, "points": -4}]}))
    profile = with_activities(person(), act(A.UNSUBSCRIBE, 70),
                              act(A.PAGE_VIEW, 65, 1, url="https://x.test/"))
    primary = qualify(profile, model, AT).scores[0]
    by_rule = {e.rule_id: e for e in primary.ledger}
    assert by_rule["engagement.unsubscribe"].points == -25  # negative points never fade
    assert by_rule["engagement.unsubscribe"].decay == 1.0
    quiet = by_rule["engagement.quiet"]
    assert quiet.points == -4 and quiet.activity_id == "hubspot:page_view-1"
    assert quiet.detail.startswith("no engagement for 60+ days (last: page_view")


def test_a_named_score_can_have_its_own_decay_lookback_and_engagement() -> None:
    model = parse_model(raw(scores=[{"name": "fresh", "engagement": {
        "decay_steps": [{"max_age_days": 7, "factor": 1}], "lookback_days": 30,
        "engaged_activities": ["webinar_attendance"],
        "rules": [{"id": "views", "activity": "page_view", "points": 3},
                  {"id": "no_webinar", "inactive_days": 14, "points": -2}]}}]))
    profile = with_activities(person(), act(A.PAGE_VIEW, 2, 1, url="https://x.test/"),
                              act(A.PAGE_VIEW, 10, 2, url="https://x.test/"),
                              act(A.WEBINAR_ATTENDANCE, 20, 3))
    fresh = qualify(profile, model, AT).scores[1]
    lines = [(e.rule_id, e.points, e.decay) for e in fresh.ledger
             if e.rule_id.startswith("engagement.")]
    # The 10-day-old view is past the last decay step; the idle clock runs from the
    # webinar (its own engaged activities), not from the page views.
    assert lines == [("engagement.views", 3.0, 1.0), ("engagement.no_webinar", -2.0, 1.0)]
    assert fresh.engagement == 1.0


def test_primary_score_name_is_configurable() -> None:
    decision = qualify(person(), parse_model(raw(primary_score="core")), AT)
    assert [c.name for c in decision.scores] == ["core", "analytics", "enterprise"]


def test_fast_ledger_lines_are_ordinary_ledger_entries() -> None:
    fast = ledger_line("engagement.x", 8.4, "page_view /pricing", "hubspot:1", AT, 0.7)
    slow = LedgerEntry("engagement.x", 8.4, "page_view /pricing", "hubspot:1", AT, 0.7)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert pickle.loads(pickle.dumps(fast)) == slow
    with pytest.raises(AttributeError):
        fast.points = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------- write-back and the store


def config_with(tmp_path: pathlib.Path, scores: dict[str, Any]) -> LoadedConfig:
    data: dict[str, Any] = yaml.safe_load(
        (pathlib.Path(__file__).resolve().parents[1] / "config" / "syncer.example.yaml"
         ).read_text())
    data["model"] = str(EXAMPLE_MODEL)
    data["connectors"][0]["fields"]["scores"] = scores
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_named_scores_are_written_to_their_fields_as_canonical_numbers(
        tmp_path: pathlib.Path) -> None:
    loaded = config_with(tmp_path, {
        "analytics": {"score": "an_score", "fit": "an_fit", "engagement": "an_eng",
                      "grade": "an_grade"},
        "primary": {"engagement": "main_eng"}, "unknown": {"score": "nothing"}})
    profile = with_activities(person(), act(A.WEBINAR_ATTENDANCE, 20, 3))
    decision = qualify(profile, parse_model(raw()), AT)
    values = score_values(loaded.config.connectors[0].fields.scores, decision)
    analytics = decision.scores[1]
    assert values == {"an_score": str(analytics.total), "an_fit": "22.5",
                      "an_eng": "2.25", "an_grade": "A",
                      "main_eng": number_text(decision.engagement_points)}
    everything = desired_values(loaded.config.connectors[0], decision,
                                OwnerDirectory.build([]))
    assert everything["an_score"] == str(analytics.total)
    assert everything[loaded.config.connectors[0].fields.score or ""] == str(decision.score)
    assert [number_text(v) for v in (8.399999999999999, 30.0, -0.001, -3.25, 0.125)] == [
        "8.4", "30", "0", "-3.25", "0.12"]


def test_a_field_map_naming_a_score_the_model_lacks_is_a_clear_problem(
        tmp_path: pathlib.Path) -> None:
    model = load_model(EXAMPLE_MODEL)
    good = config_with(tmp_path, {"lead_routing": {"score": "x"}, "primary": {"fit": "y"}})
    assert check_score_fields(good, model) == []
    bad = config_with(tmp_path, {"lead_routng": {"score": "x"}, "pipeline": {"fit": "y"}})
    first, second = check_score_fields(bad, model)
    assert first == (f"{bad.path}: connectors[0] (name: hubspot).fields.scores.lead_routng: "
                     f"the model default has no score named 'lead_routng' (did you mean "
                     f"'lead_routing'?). Fix: use one of primary, lead_routing, or add a score "
                     f"named 'lead_routng' under `scores:` in model.example.yaml")
    assert "fields.scores.pipeline: the model default has no score named 'pipeline'" in second


def test_scores_round_trip_through_the_store(state_url: str) -> None:
    model = parse_model(raw())
    profile = with_activities(person(), act(A.PAGE_VIEW, 3, 2, url="https://x.test/analytics"),
                              act(A.PRICING_PAGE_VIEW, 1))
    decision = qualify(profile, model, AT)
    old = Decision("old@x.test", 3, 3.0, 0.0, "C", Stage.LEAD, None, (), "m@1")
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            store.save_decisions(tx, [decision, old], AT)
        loaded = store.decisions([decision.key, old.key])
    finally:
        store.close()
    assert loaded[decision.key] == decision
    assert len(loaded[decision.key].scores) == 3
    assert loaded[old.key].scores == ()
    store = Store.open(state_url)
    try:
        light = store.decisions([decision.key], scores=False)[decision.key]
    finally:
        store.close()
    assert light.scores == () and light == dataclasses.replace(decision, scores=())


# ---------------------------------------------------------------- explain on a synced sandbox


def test_explain_prints_every_score_with_its_ledger(
        sandboxes: Sandboxes, sqlite_url: str, tmp_path: pathlib.Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A real sync against both sandboxes with the example model (one named score); the
    named score is also written to a CRM field and read back from the sandbox."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(sandboxes, sqlite_url, monkeypatch)
    hubspot = data["connectors"][0]
    assert hubspot["kind"] == "hubspot"
    # The sandboxes define no named-score properties: syncer's owner-reason text field
    # stands in for one here.
    del hubspot["fields"]["owner_reason"]
    hubspot["fields"]["scores"] = {"lead_routing": {"score": "syncer_owner_reason"}}
    loaded = write_config(tmp_path / "syncer.yaml", data)
    model = load_model(EXAMPLE_MODEL)
    assert check_score_fields(loaded, model) == []
    with Runtime(loaded) as runtime:
        summary = run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model,
                           NOW)
    assert summary.people > 100 and not summary.failures

    store = Store.open(sqlite_url)
    try:
        keys = store.person_keys(["hubspot"])
        decisions = store.decisions(keys)
    finally:
        store.close()
    engaged = [d for d in decisions.values()
               if any(e.rule_id.startswith("engagement.") for e in d.scores[1].ledger)]
    assert engaged, "some sandbox people engage with the second product line"
    decision = max(engaged, key=lambda d: (d.scores[1].total, d.key))
    primary, routing = decision.scores
    assert (primary.name, routing.name) == ("primary", "lead_routing")

    assert main(["explain", decision.key, "--config", str(loaded.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    headings = [line for line in out if line.startswith("score ")]
    assert headings == [
        f"score primary: total {primary.total} (fit {primary.fit:.4g}, engagement "
        f"{primary.engagement:.4g}), grade {primary.grade}",
        f"score lead_routing: total {routing.total} (fit {routing.fit:.4g}, engagement "
        f"{routing.engagement:.4g}), grade {routing.grade}"]
    start = out.index(headings[1])
    ledger = out[start + 1:start + 1 + len(routing.ledger)]
    for line, entry in zip(ledger, routing.ledger, strict=True):
        assert line.split()[:2] == [entry.rule_id, f"{entry.points:+.2f}"]
        if entry.activity_id is not None:
            assert entry.activity_id in line and f"x{entry.decay:.2f}" in line
            assert entry.at is not None and entry.at.strftime("%Y-%m-%d %H:%MZ") in line

    assert main(["explain", decision.key, "--json", "--config", str(loaded.path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in shown["scores"]] == ["primary", "lead_routing"]
    for card, stored in zip(shown["scores"], decision.scores, strict=True):
        assert card["total"] == stored.total and card["grade"] == stored.grade
        assert math.fsum(e["points"] for e in card["ledger"]) == pytest.approx(
            card["total"], abs=1e-9)
        assert [e["activity_id"] for e in card["ledger"]] == [
            e.activity_id for e in stored.ledger]

    # Written to the CRM: the HubSpot record holds the named score's total.
    record = next(r for r in sandboxes.hubspot.records()
                  if (r.get("email") or "").lower() == decision.key)
    assert record["syncer_owner_reason"] == str(routing.total)
