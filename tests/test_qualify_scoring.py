"""Fit and engagement scoring: each operator, decay, windows, caps, grades, thresholds."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncer.domain.types import Activity, ActivityType, Decision, Person, Profile, Stage
from syncer.qualify import Model, parse_model, qualify

NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
A = ActivityType


def person(**fields: Any) -> Person:
    fields.setdefault("email", "ann.lee@acme.example")
    return Person(source=fields.pop("source", "hubspot"), record_id=fields.pop("record_id", "1"),
                  object_type="contact", **fields)


def act(kind: ActivityType, days_ago: float, n: int = 0, **attributes: str) -> Activity:
    return Activity(source="hubspot", source_id=f"{kind.value}-{days_ago}-{n}", record_id="1",
                    type=kind, occurred_at=NOW - timedelta(days=days_ago),
                    attributes=attributes)


def profile(*activities: Activity, records: tuple[Person, ...] | None = None,
            current_stage: Stage | None = None, **fields: Any) -> Profile:
    return Profile(key="ann.lee@acme.example", records=records or (person(**fields),),
                   activities=activities, current_stage=current_stage)


def model(fit_rules: list[dict[str, Any]] | None = None,
          engagement_rules: list[dict[str, Any]] | None = None,
          half_life: float | None = None, **qualification: Any) -> Model:
    engagement: dict[str, Any] = {"rules": engagement_rules or []}
    if half_life is not None:
        engagement["half_life_days"] = half_life
    return parse_model({
        "name": "t",
        "fit": {"rules": fit_rules or [],
                "grades": [{"grade": "A", "min": 40}, {"grade": "B", "min": 25},
                           {"grade": "C", "min": 10}, {"grade": "D", "min": 0}]},
        "engagement": engagement,
        "qualification": {"mql_score": 50, **qualification},
    })


def fit_rule(**rule: Any) -> dict[str, Any]:
    return {"id": "r", "points": 10, **rule}


def fired(decision: Decision) -> dict[str, float]:
    return {r.rule_id: r.points for r in decision.reasons if r.points}


def assert_accounted(decision: Decision) -> None:
    total = math.fsum(r.points for r in decision.reasons)
    assert total == pytest.approx(decision.fit_points + decision.engagement_points, abs=1e-9)
    assert decision.score == round(decision.fit_points + decision.engagement_points)


# ---------------------------------------------------------------- fit operators


@pytest.mark.parametrize(("rule", "fields", "hit"), [
    ({"field": "industry", "equals": "software"}, {"industry": " Software "}, True),
    ({"field": "industry", "equals": "software"}, {"industry": "Software Services"}, False),
    ({"field": "employees", "equals": 50}, {"employees": 50}, True),
    ({"field": "country", "in": ["US", "United Kingdom"]}, {"country": "united kingdom"}, True),
    ({"field": "country", "in": ["US", "United Kingdom"]}, {"country": "USA"}, False),
    ({"field": "employees", "in": [1, 2]}, {"employees": 2}, True),
    ({"field": "title", "contains": "vp"}, {"title": "SVP, Marketing"}, True),
    ({"field": "title", "contains": ["director", "head of"]}, {"title": "Head Of Sales"}, True),
    ({"field": "title", "contains": ["director", "head of"]}, {"title": "Manager"}, False),
    ({"field": "title", "regex": r"\bintern\b"}, {"title": "Marketing Intern"}, True),
    ({"field": "title", "regex": r"\bintern\b"}, {"title": "International Sales"}, False),
    ({"field": "employees", "min": 50, "max": 499}, {"employees": 50}, True),
    ({"field": "employees", "min": 50, "max": 499}, {"employees": 499}, True),
    ({"field": "employees", "min": 50, "max": 499}, {"employees": 500}, False),
    ({"field": "employees", "min": 500}, {"employees": 100000}, True),
    ({"field": "employees", "max": 9}, {"employees": 10}, False),
    ({"field": "email", "email_domain_in": ["gmail.com"]}, {"email": "a@GMail.com"}, True),
    ({"field": "email", "email_domain_in": ["routewise.io"]}, {"email": "a@eu.routewise.io"},
     True),
    ({"field": "email", "email_domain_in": ["gmail.com"]}, {"email": "a@notgmail.com"}, False),
    ({"field": "company", "missing": True}, {"company": ""}, True),
    ({"field": "company", "missing": True}, {"company": "Acme"}, False),
    ({"field": "company", "missing": False}, {"company": "Acme"}, True),
    ({"field": "title", "contains": "vp"}, {}, False),  # missing value never matches
    ({"field": "employees", "min": 0}, {}, False),
    ({"field": "first_name", "equals": "ann"}, {"first_name": "Ann"}, True),
    ({"field": "last_name", "regex": "^l"}, {"last_name": "Lee"}, True),
])
def test_fit_operator(rule: dict[str, Any], fields: dict[str, Any], hit: bool) -> None:
    decision = qualify(profile(**fields), model([fit_rule(**rule)]), NOW)
    assert fired(decision) == ({"fit.r": 10.0} if hit else {})
    assert decision.fit_points == (10.0 if hit else 0.0)
    assert_accounted(decision)


def test_fit_reason_says_what_matched() -> None:
    decision = qualify(profile(title="VP of Sales"),
                       model([fit_rule(field="title", contains=["director", "vp"])]), NOW)
    (reason, _stage) = decision.reasons
    assert reason.rule_id == "fit.r" and reason.evidence_at is None
    assert reason.detail == "title 'VP of Sales' contains 'vp'"


def test_email_rule_falls_back_to_the_profile_key_and_shows_only_the_domain() -> None:
    rule = fit_rule(field="email", email_domain_in=["acme.example"], points=-5)
    decision = qualify(profile(email=None), model([rule]), NOW)
    assert fired(decision) == {"fit.r": -5.0}
    assert decision.reasons[0].detail == "email domain acme.example is listed"


def test_freshest_record_wins() -> None:
    records = (person(title=None, source="salesforce"), person(title="VP Sales"),
               person(title="Intern"))
    decision = qualify(profile(records=records),
                       model([fit_rule(field="title", contains="vp")]), NOW)
    assert fired(decision) == {"fit.r": 10.0}


def test_group_counts_only_the_first_match() -> None:
    rules = [fit_rule(id="vp", field="title", contains="vp", points=20, group="seniority"),
             fit_rule(id="manager", field="title", contains="manager", points=8,
                      group="seniority"),
             fit_rule(id="ops", field="title", contains="operations", points=5)]
    decision = qualify(profile(title="VP, Sales Operations Manager"), model(rules), NOW)
    assert fired(decision) == {"fit.vp": 20.0, "fit.ops": 5.0}
    decision = qualify(profile(title="Operations Manager"), model(rules), NOW)
    assert fired(decision) == {"fit.manager": 8.0, "fit.ops": 5.0}


def test_negative_fit_rules_subtract() -> None:
    rules = [fit_rule(id="vp", field="title", contains="vp", points=20),
             fit_rule(id="free", field="email", email_domain_in=["gmail.com"], points=-15)]
    decision = qualify(profile(title="VP", email="x@gmail.com"), model(rules), NOW)
    assert decision.fit_points == 5.0 and decision.score == 5
    assert_accounted(decision)


@pytest.mark.parametrize(("points", "grade"), [
    (55, "A"), (40, "A"), (39.5, "B"), (25, "B"), (10, "C"), (0, "D"), (-30, "D"),
])
def test_grades(points: float, grade: str) -> None:
    decision = qualify(profile(title="x"),
                       model([fit_rule(field="title", missing=False, points=points)]), NOW)
    assert decision.fit_grade == grade


# ---------------------------------------------------------------- engagement


def rule(kind: ActivityType, points: float, **extra: Any) -> dict[str, Any]:
    return {"id": extra.pop("id", kind.value), "activity": kind.value, "points": points,
            **extra}


def test_decay_halves_points_every_half_life() -> None:
    m = model(engagement_rules=[rule(A.PRICING_PAGE_VIEW, 12)], half_life=30)
    for days in (0, 7.5, 30, 60, 90):
        decision = qualify(profile(act(A.PRICING_PAGE_VIEW, days)), m, NOW)
        assert decision.engagement_points == pytest.approx(12 * 0.5 ** (days / 30), rel=1e-12)
    reason = qualify(profile(act(A.PRICING_PAGE_VIEW, 30, url="https://x.test/pricing")), m,
                     NOW).reasons[0]
    assert reason.rule_id == "engagement.pricing_page_view"
    assert reason.evidence_at == NOW - timedelta(days=30)
    assert reason.detail == "pricing_page_view /pricing 2026-09-05, 12 decayed x0.50"


def test_no_half_life_means_no_decay() -> None:
    m = model(engagement_rules=[rule(A.WEBINAR_ATTENDANCE, 10)])
    assert qualify(profile(act(A.WEBINAR_ATTENDANCE, 170)), m, NOW).engagement_points == 10.0


def test_negative_points_do_not_decay() -> None:
    m = model(engagement_rules=[rule(A.EMAIL_BOUNCE, -15), rule(A.UNSUBSCRIBE, -25)],
              half_life=30)
    decision = qualify(profile(act(A.EMAIL_BOUNCE, 120), act(A.UNSUBSCRIBE, 90)), m, NOW)
    assert fired(decision) == {"engagement.email_bounce": -15.0,
                               "engagement.unsubscribe": -25.0}
    assert decision.score == -40


def test_lookback_and_future_activities_are_ignored() -> None:
    m = parse_model({"name": "t", "fit": {"grades": [{"grade": "A", "min": 0}]},
                     "engagement": {"lookback_days": 90, "rules": [rule(A.FORM_FILL, 5)]},
                     "qualification": {"mql_score": 50}})
    inside, edge, old, future = (act(A.FORM_FILL, 30), act(A.FORM_FILL, 90),
                                 act(A.FORM_FILL, 90.01), act(A.FORM_FILL, -1))
    decision = qualify(profile(inside, edge, old, future), m, NOW)
    assert decision.engagement_points == 10.0
    assert decision.reasons[0].detail.startswith("2x form_fill")


def test_where_filters_on_attributes() -> None:
    m = model(engagement_rules=[
        rule(A.PAGE_VIEW, 3, id="product", where={"url": "/Product"}),
        rule(A.PAGE_VIEW, 1, id="any_page")])
    decision = qualify(profile(act(A.PAGE_VIEW, 0, url="https://x.test/product/tour"),
                               act(A.PAGE_VIEW, 0, n=1, url="https://x.test/careers"),
                               act(A.PAGE_VIEW, 0, n=2)), m, NOW)
    assert fired(decision) == {"engagement.product": 3.0, "engagement.any_page": 3.0}


def test_max_count_keeps_the_most_recent() -> None:
    m = model(engagement_rules=[rule(A.EMAIL_CLICK, 8, max_count=2)], half_life=10)
    decision = qualify(profile(*(act(A.EMAIL_CLICK, d) for d in (40, 0, 20, 10))), m, NOW)
    assert decision.engagement_points == pytest.approx(8 + 8 * 0.5)
    (reason, _) = decision.reasons
    assert reason.evidence_at == NOW
    assert reason.detail == ("2x email_click, latest " + NOW.date().isoformat()
                             + "; 8 each, decayed to 12.00 (2 older not counted)")


def test_max_points_caps_the_rule_total() -> None:
    m = model(engagement_rules=[rule(A.PAGE_VIEW, 3, max_points=7)])
    decision = qualify(profile(*(act(A.PAGE_VIEW, d) for d in range(5))), m, NOW)
    assert decision.engagement_points == 7.0
    assert "(capped at 7)" in decision.reasons[0].detail
    assert "(2 older not counted)" in decision.reasons[0].detail
    assert_accounted(decision)


def test_max_points_caps_negative_rules_too() -> None:
    m = model(engagement_rules=[rule(A.EMAIL_BOUNCE, -15, max_points=20)])
    decision = qualify(profile(act(A.EMAIL_BOUNCE, 1), act(A.EMAIL_BOUNCE, 2),
                               act(A.EMAIL_BOUNCE, 3)), m, NOW)
    assert decision.engagement_points == -20.0


def test_rules_are_cumulative_and_fit_plus_engagement_is_the_score() -> None:
    m = model([fit_rule(field="title", contains="vp", points=20)],
              [rule(A.FORM_FILL, 5, id="any_form"),
               rule(A.FORM_FILL, 10, id="contact", where={"form": "contact"})], half_life=30)
    decision = qualify(profile(act(A.FORM_FILL, 3, form="Contact us"), title="VP"), m, NOW)
    factor = 0.5 ** (3 / 30)
    assert decision.engagement_points == pytest.approx(15 * factor)
    assert decision.score == round(20 + 15 * factor) == 34
    assert_accounted(decision)


def test_activity_types_without_rules_score_nothing() -> None:
    m = model(engagement_rules=[rule(A.FORM_FILL, 5)])
    assert qualify(profile(act(A.MEETING, 1), act(A.EMAIL_OPEN, 1)), m, NOW).score == 0


# ---------------------------------------------------------------- thresholds


def scored(title_points: float, engagement: int = 0, **qualification: Any) -> Decision:
    m = model([fit_rule(field="title", missing=False, points=title_points)],
              [rule(A.FORM_FILL, 1)], **qualification)
    activities = [act(A.FORM_FILL, 1, n=i) for i in range(engagement)]
    return qualify(profile(*activities, title="x"), m, NOW)


def test_mql_at_the_threshold_lead_below() -> None:
    at, below = scored(50), scored(49)
    assert at.stage is Stage.MQL and at.score == 50
    assert at.reasons[-1].rule_id == "stage.mql"
    assert at.reasons[-1].detail == "score 50 >= 50"
    assert below.stage is Stage.LEAD
    assert below.reasons[-1].detail == "not MQL: score 49 below 50"


def test_min_fit_blocks_mql() -> None:
    m = model([fit_rule(field="title", missing=False, points=5)],
              [rule(A.FORM_FILL, 50)], min_fit=10)
    decision = qualify(profile(act(A.FORM_FILL, 0), title="x"), m, NOW)
    assert decision.score == 55 and decision.stage is Stage.LEAD
    assert decision.reasons[-1].detail == "not MQL: fit 5 below 10"


def test_min_engagement_blocks_mql() -> None:
    assert scored(60, engagement=2, min_engagement=3).stage is Stage.LEAD
    passed = scored(60, engagement=3, min_engagement=3)
    assert passed.stage is Stage.MQL
    assert passed.reasons[-1].detail == "score 63 >= 50, engagement 3 >= 3"


def test_score_rounds_half_to_even() -> None:
    assert scored(49.5).score == 50 and scored(50.5).score == 50


def test_decision_carries_key_owner_and_model_version() -> None:
    m = model()
    base = profile()
    owned = Profile(key=base.key, records=base.records, activities=(),
                    owner_email="rep@example.com")
    decision = qualify(owned, m, NOW)
    assert decision.key == "ann.lee@acme.example"
    assert decision.owner_email == "rep@example.com"
    assert decision.model_version == m.version
    assert decision.score == 0 and decision.fit_grade == "D"


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        qualify(profile(), model(), datetime(2026, 10, 5))
