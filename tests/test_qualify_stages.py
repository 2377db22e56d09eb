"""Stages beyond v1: matrix qualification, the subscriber stage, recycle rules (the only way
back down the ladder), disqualify rules, keeping disqualified people out, and how all of it
is explained in reasons, the CRM summary and the breakdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncer.domain.types import Activity, ActivityType, Decision, Person, Profile, Reason, Stage
from syncer.qualify import Model, breakdown, parse_model, qualify, route, summarize

NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
A = ActivityType
REPS = ["dana@x.test", "marco@x.test"]


def act(kind: ActivityType, days_ago: float, n: int = 0, **attributes: str) -> Activity:
    return Activity(source="salesforce", source_id=f"{kind.value}-{days_ago}-{n}",
                    record_id="00Q1", type=kind, occurred_at=NOW - timedelta(days=days_ago),
                    attributes=attributes)


def profile(*activities: Activity, current: Stage | None = None, title: str = "VP Sales",
            email: str = "kim@acme.example") -> Profile:
    record = Person(source="salesforce", record_id="00Q1", object_type="Lead", email=email,
                    title=title)
    return Profile(key=email, records=(record,), activities=activities, current_stage=current)


def model(**sections: Any) -> Model:
    return parse_model(raw_model(**sections))


def raw_model(**sections: Any) -> dict[str, Any]:
    """A small model; each keyword updates one section."""
    raw: dict[str, Any] = {
        "name": "t",
        "fit": {"rules": [{"id": "vp_title", "field": "title", "contains": "vp", "points": 20}],
                "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": 0}]},
        "engagement": {"rules": [
            {"id": "demo_request", "activity": "demo_request", "points": 40},
            {"id": "pricing_page", "activity": "pricing_page_view", "points": 12},
            {"id": "opens", "activity": "email_open", "points": 1},
            {"id": "newsletter", "activity": "newsletter_signup", "points": 2}],
            "engaged_activities": ["pricing_page_view", "demo_request", "newsletter_signup"]},
        "qualification": {"mql_score": 30},
        "routing": {"reps": [{"email": e} for e in REPS]},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return raw


def stage_reasons(decision: Decision) -> list[tuple[str, str]]:
    return [(r.rule_id, r.detail) for r in decision.reasons
            if r.rule_id.startswith(("stage.", "lifecycle."))]


# ---------------------------------------------------------------- matrix qualification


MATRIX = {"mode": "matrix", "matrix": ["A1", "A2", "B1"]}
BANDS = {"bands": [{"band": "1", "min": 20}, {"band": "2", "min": 5},
                   {"band": "3", "min": -1000}]}


def matrix_model() -> Model:
    raw = raw_model(engagement=BANDS)
    raw["qualification"] = MATRIX
    return parse_model(raw)


@pytest.mark.parametrize(("title", "pages", "stage", "detail"), [
    ("VP Sales", 1, Stage.MQL, "fit A x engagement 2 (12) is in the matrix (A1, A2, B1)"),
    ("VP Sales", 0, Stage.LEAD, "not MQL: fit A x engagement 3 (0) is not in the matrix "
                                "(A1, A2, B1)"),
    ("Analyst", 2, Stage.MQL, "fit B x engagement 1 (24) is in the matrix (A1, A2, B1)"),
    ("Analyst", 1, Stage.LEAD, "not MQL: fit B x engagement 2 (12) is not in the matrix "
                               "(A1, A2, B1)"),
])
def test_matrix_qualifies_on_fit_grade_and_engagement_band(
        title: str, pages: int, stage: Stage, detail: str) -> None:
    activities = [act(A.PRICING_PAGE_VIEW, 1, n=i) for i in range(pages)]
    decision = qualify(profile(*activities, title=title), matrix_model(), NOW)
    assert decision.stage is stage
    assert stage_reasons(decision) == [(f"stage.{stage.value}", detail)]


def test_matrix_ignores_the_total_score() -> None:
    """Score 24 is below the total model's 30, but B1 is a qualifying cell."""
    activities = (act(A.PRICING_PAGE_VIEW, 1), act(A.PRICING_PAGE_VIEW, 2))
    in_matrix = qualify(profile(*activities, title="Analyst"), matrix_model(), NOW)
    assert in_matrix.score == 24 and in_matrix.stage is Stage.MQL
    on_total = qualify(profile(*activities, title="Analyst"), model(), NOW)
    assert on_total.score == 24 and on_total.stage is Stage.LEAD


# ---------------------------------------------------------------- subscriber


SUBSCRIBER = {"subscriber_activities": ["newsletter_signup", "email_open"]}


def test_only_subscriber_activities_make_a_subscriber() -> None:
    m = model(lifecycle=SUBSCRIBER)
    decision = qualify(profile(act(A.NEWSLETTER_SIGNUP, 3), act(A.EMAIL_OPEN, 1),
                               title="Analyst"), m, NOW)
    assert decision.stage is Stage.SUBSCRIBER
    assert stage_reasons(decision) == [
        ("stage.subscriber", "only subscriber activities; not MQL: score 3 below 30")]


@pytest.mark.parametrize(("activities", "stage"), [
    ((), Stage.LEAD),  # no activity at all: an imported or hand-made lead, not a subscriber
    ((act(A.NEWSLETTER_SIGNUP, 3), act(A.PRICING_PAGE_VIEW, 200)), Stage.LEAD),
    ((act(A.NEWSLETTER_SIGNUP, -3),), Stage.LEAD),  # in the future: not yet
    ((act(A.NEWSLETTER_SIGNUP, 3),), Stage.SUBSCRIBER),
])
def test_subscriber_needs_activity_and_nothing_else(activities: tuple[Activity, ...],
                                                    stage: Stage) -> None:
    assert qualify(profile(*activities, title="Analyst"), model(lifecycle=SUBSCRIBER),
                   NOW).stage is stage


def test_subscriber_with_enough_score_is_mql_and_a_lead_stays_lead() -> None:
    m = model(lifecycle=SUBSCRIBER)
    many = [act(A.EMAIL_OPEN, 1, n=i) for i in range(10)]
    assert qualify(profile(*many), m, NOW).stage is Stage.MQL  # 20 + 10 opens
    kept = qualify(profile(act(A.NEWSLETTER_SIGNUP, 1), current=Stage.LEAD, title="x"), m, NOW)
    assert kept.stage is Stage.LEAD
    assert [r for r, _ in stage_reasons(kept)] == ["stage.subscriber",
                                                   "lifecycle.never_backwards"]


def test_without_subscriber_activities_there_is_no_subscriber_stage() -> None:
    decision = qualify(profile(act(A.NEWSLETTER_SIGNUP, 1), title="x"), model(), NOW)
    assert decision.stage is Stage.LEAD


# ---------------------------------------------------------------- recycle


STALE = {"recycle": [{"id": "stale_mql", "from": ["mql"], "inactive_days": 90,
                      "to": "recycled"}]}


def test_an_mql_gone_quiet_is_recycled_with_the_reason_and_evidence() -> None:
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, 100), current=Stage.MQL),
                       model(lifecycle=STALE), NOW)
    assert decision.stage is Stage.RECYCLED
    recycled = decision.reasons[-1]
    assert recycled == Reason(
        "lifecycle.recycle.stale_mql", 0.0,
        "MQL -> RECYCLED: no engagement for 90+ days (last: pricing_page_view 2026-06-27, "
        "100 days ago)", NOW - timedelta(days=100))
    # It replaces the never-backwards reason rather than contradicting it.
    assert [r for r, _ in stage_reasons(decision)] == ["stage.mql",
                                                       "lifecycle.recycle.stale_mql"]


def test_recent_engagement_keeps_an_mql() -> None:
    decision = qualify(profile(act(A.NEWSLETTER_SIGNUP, 10), current=Stage.MQL, title="x"),
                       model(lifecycle=STALE), NOW)
    assert decision.stage is Stage.MQL
    assert decision.reasons[-1].rule_id == "lifecycle.never_backwards"


def test_email_opens_alone_do_not_count_as_engagement_when_left_out() -> None:
    """Someone whose score still says MQL (fit plus opens) but who has not engaged in 90
    days is recycled at once instead of becoming MQL for one run."""
    opens = [act(A.EMAIL_OPEN, 1, n=i) for i in range(12)]
    decision = qualify(profile(*opens), model(lifecycle=STALE), NOW)
    assert decision.score == 32
    assert decision.stage is Stage.RECYCLED
    assert decision.reasons[-1].detail == "MQL -> RECYCLED: no engagement on record"


def test_a_recycled_person_who_engages_again_requalifies() -> None:
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, 2), current=Stage.RECYCLED),
                       model(lifecycle=STALE), NOW)
    assert decision.stage is Stage.MQL
    assert stage_reasons(decision) == [("stage.mql", "score 32 >= 30")]


def test_a_recycled_person_who_scores_lead_stays_recycled() -> None:
    decision = qualify(profile(current=Stage.RECYCLED, title="x"), model(lifecycle=STALE), NOW)
    assert decision.stage is Stage.RECYCLED
    assert decision.reasons[-1].rule_id == "lifecycle.never_backwards"


def test_recycle_rules_chain_in_order_and_can_return_to_lead() -> None:
    chain = {"recycle": [
        {"id": "stale_mql", "from": ["mql"], "inactive_days": 90, "to": "recycled"},
        {"id": "long_gone", "from": ["recycled"], "inactive_days": 180, "to": "lead"}]}
    m = model(lifecycle=chain)
    decision = qualify(profile(act(A.NEWSLETTER_SIGNUP, 200), current=Stage.MQL, title="x"),
                       m, NOW)
    assert decision.stage is Stage.LEAD
    assert [r for r, _ in stage_reasons(decision)] == [
        "stage.lead", "lifecycle.recycle.stale_mql", "lifecycle.recycle.long_gone"]
    assert decision.reasons[-1].detail.startswith("RECYCLED -> LEAD: no engagement for 180+")
    middle = qualify(profile(act(A.NEWSLETTER_SIGNUP, 120), current=Stage.MQL, title="x"),
                     m, NOW)
    assert middle.stage is Stage.RECYCLED


@pytest.mark.parametrize("current", [Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER])
def test_recycle_never_touches_sales_owned_stages(current: Stage) -> None:
    decision = qualify(profile(current=current, title="x"), model(lifecycle=STALE), NOW)
    assert decision.stage is current
    assert decision.reasons[-1].rule_id == "lifecycle.sales_owned"


# ---------------------------------------------------------------- disqualify


COMPETITOR = {"disqualify": [
    {"id": "competitor", "field": "email", "email_domain_in": ["routewise.io"]},
    {"id": "hard_bounce", "activity": "email_bounce", "where": {"reason": "hard"}}]}


def test_a_competitor_is_disqualified_even_after_a_demo_request() -> None:
    decision = qualify(profile(act(A.DEMO_REQUEST, 1), email="kim@eu.routewise.io"),
                       model(lifecycle=COMPETITOR), NOW)
    assert decision.stage is Stage.DISQUALIFIED
    assert decision.reasons[-2].rule_id == "stage.sql"  # what the score alone would earn
    assert decision.reasons[-1] == Reason(
        "lifecycle.disqualify.competitor", 0.0,
        "disqualified: email domain eu.routewise.io is listed")
    assert decision.score == 60  # the points are still shown and accounted for


def test_an_activity_rule_disqualifies_with_its_evidence() -> None:
    m = model(lifecycle=COMPETITOR)
    soft = act(A.EMAIL_BOUNCE, 5, reason="soft", email="Nurture #3")
    hard = act(A.EMAIL_BOUNCE, 300, n=1, reason="hard", email="Nurture #1")
    assert qualify(profile(soft), m, NOW).stage is Stage.LEAD
    decision = qualify(profile(soft, hard), m, NOW)  # any time: also beyond the lookback
    assert decision.stage is Stage.DISQUALIFIED
    assert decision.reasons[-1] == Reason(
        "lifecycle.disqualify.hard_bounce", 0.0,
        "disqualified: email_bounce 'Nurture #1' 2025-12-09", hard.occurred_at)


@pytest.mark.parametrize("current", [Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER])
def test_disqualify_never_touches_sales_owned_stages(current: Stage) -> None:
    decision = qualify(profile(current=current, email="kim@routewise.io"),
                       model(lifecycle=COMPETITOR), NOW)
    assert decision.stage is current


def test_disqualified_is_kept_until_someone_changes_it_in_the_crm() -> None:
    engaged = act(A.PRICING_PAGE_VIEW, 1)
    kept = qualify(profile(engaged, current=Stage.DISQUALIFIED), model(), NOW)
    assert kept.stage is Stage.DISQUALIFIED
    assert kept.reasons[-1] == Reason(
        "lifecycle.disqualified_kept", 0.0,
        "stays DISQUALIFIED (scored MQL): a disqualified person comes back only when someone "
        "changes the stage in the CRM")
    # A person moved back to LEAD by hand in the CRM is scored normally again.
    assert qualify(profile(engaged, current=Stage.LEAD), model(), NOW).stage is Stage.MQL


def test_keep_disqualified_false_re_evaluates_every_run() -> None:
    m = model(lifecycle={**COMPETITOR, "keep_disqualified": False})
    assert qualify(profile(act(A.PRICING_PAGE_VIEW, 1), current=Stage.DISQUALIFIED), m,
                   NOW).stage is Stage.MQL
    assert qualify(profile(current=Stage.DISQUALIFIED, email="kim@routewise.io"), m,
                   NOW).stage is Stage.DISQUALIFIED


def test_disqualified_and_recycled_people_are_not_routed() -> None:
    for decision in (
            qualify(profile(act(A.PRICING_PAGE_VIEW, 1), email="kim@routewise.io"),
                    model(lifecycle=COMPETITOR), NOW),
            qualify(profile(act(A.PRICING_PAGE_VIEW, 100), current=Stage.MQL),
                    model(lifecycle=STALE), NOW)):
        assert decision.stage in (Stage.DISQUALIFIED, Stage.RECYCLED)
        assert route(decision, profile(), model(), REPS, 0) == (decision, 0)


# ---------------------------------------------------------------- explanations


def test_summary_and_breakdown_lead_with_the_lifecycle_reason() -> None:
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, 100), current=Stage.MQL),
                       model(lifecycle=STALE), NOW)
    assert summarize(decision, 500) == (
        "RECYCLED 32 (fit A): MQL -> RECYCLED: no engagement for 90+ days (last: "
        "pricing_page_view 2026-06-27, 100 days ago); score 32 >= 30; vp title +20; "
        "pricing page 2026-06-27 +12")
    lines = breakdown(decision)
    assert len(lines) == len(decision.reasons)
    assert lines[-1].split()[:4] == ["lifecycle.recycle.stale_mql", "+0.00", "2026-06-27",
                                     "12:00Z"]
    short = summarize(decision, 60)
    assert len(short) <= 60 and short.startswith("RECYCLED 32 (fit A)")


def test_disqualified_summary_fits_a_salesforce_text_field() -> None:
    decision = qualify(profile(act(A.DEMO_REQUEST, 1), email="kim@routewise.io"),
                       model(lifecycle=COMPETITOR), NOW)
    text = summarize(decision, 255)
    assert text.startswith("DISQUALIFIED 60 (fit A): disqualified: email domain routewise.io "
                           "is listed; hand-raise: demo_request 2026-10-04")
    assert len(text) <= 255
