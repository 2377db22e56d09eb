"""Hand-raises, never-backwards, sales-owned stages, weighted round robin, and the human
text (summary and breakdown) built from a decision."""

from __future__ import annotations

import collections
import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncer.domain.types import Activity, ActivityType, Decision, Person, Profile, Reason, Stage
from syncer.qualify import Model, breakdown, parse_model, qualify, route, summarize

NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
A = ActivityType
REPS = ["dana@x.test", "marco@x.test", "keiko@x.test", "olga@x.test"]


def act(kind: ActivityType, days_ago: float, n: int = 0, **attributes: str) -> Activity:
    return Activity(source="salesforce", source_id=f"{kind.value}-{days_ago}-{n}",
                    record_id="00Q1", type=kind, occurred_at=NOW - timedelta(days=days_ago),
                    attributes=attributes)


def profile(*activities: Activity, current_stage: Stage | None = None,
            owner_email: str | None = None, title: str = "VP Sales") -> Profile:
    record = Person(source="salesforce", record_id="00Q1", object_type="Lead",
                    email="kim@acme.example", title=title)
    return Profile(key="kim@acme.example", records=(record,), activities=activities,
                   current_stage=current_stage, owner_email=owner_email)


def model(**sections: Any) -> Model:
    raw: dict[str, Any] = {
        "name": "t",
        "fit": {"rules": [{"id": "vp_title", "field": "title", "contains": "vp",
                           "points": 20}],
                "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": 0}]},
        "engagement": {"half_life_days": 30, "rules": [
            {"id": "demo_request", "activity": "demo_request", "points": 40},
            {"id": "pricing_page", "activity": "pricing_page_view", "points": 12},
            {"id": "email_bounce", "activity": "email_bounce", "points": -15}]},
        "qualification": {"mql_score": 30},
        "routing": {"reps": [{"email": REPS[0], "weight": 2}, {"email": REPS[1]},
                             {"email": REPS[2]}, {"email": REPS[3]}]},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return parse_model(raw)


# ---------------------------------------------------------------- hand-raise and stages


def test_hand_raise_makes_sql_citing_the_activity() -> None:
    decision = qualify(profile(act(A.DEMO_REQUEST, 2), title="Intern"), model(), NOW)
    assert decision.stage is Stage.SQL
    stage_reason = decision.reasons[-1]
    assert stage_reason == Reason("stage.sql", 0.0, "hand-raise: demo_request 2026-10-03",
                                  NOW - timedelta(days=2))


def test_latest_hand_raise_is_cited() -> None:
    decision = qualify(profile(act(A.CONTACT_SALES, 20), act(A.PRICING_REQUEST, 4)),
                       model(), NOW)
    assert decision.reasons[-1].detail == "hand-raise: pricing_request 2026-10-01"


def test_hand_raise_window_and_future() -> None:
    m = model(qualification={"mql_score": 30, "hand_raise_days": 30})
    assert qualify(profile(act(A.DEMO_REQUEST, 29)), m, NOW).stage is Stage.SQL
    assert qualify(profile(act(A.DEMO_REQUEST, 31), title="x"), m, NOW).stage is Stage.LEAD
    assert qualify(profile(act(A.DEMO_REQUEST, -1), title="x"), m, NOW).stage is Stage.LEAD


def test_hand_raise_list_is_configurable() -> None:
    m = model(qualification={"mql_score": 99, "hand_raise": ["pricing_page_view"]})
    assert qualify(profile(act(A.PRICING_PAGE_VIEW, 1)), m, NOW).stage is Stage.SQL
    assert qualify(profile(act(A.DEMO_REQUEST, 1)), m, NOW).stage is Stage.LEAD


@pytest.mark.parametrize(("current", "expected", "rule_id"), [
    (None, Stage.LEAD, None),
    (Stage.SUBSCRIBER, Stage.LEAD, None),
    (Stage.LEAD, Stage.LEAD, None),
    (Stage.MQL, Stage.MQL, "lifecycle.never_backwards"),
    (Stage.SAL, Stage.SAL, "lifecycle.sales_owned"),
    (Stage.CUSTOMER, Stage.CUSTOMER, "lifecycle.sales_owned"),
])
def test_lead_score_never_moves_a_person_back(current: Stage | None, expected: Stage,
                                              rule_id: str | None) -> None:
    decision = qualify(profile(current_stage=current, title="x"), model(), NOW)
    assert decision.stage is expected
    last = decision.reasons[-1]
    if rule_id is None:
        assert last.rule_id == "stage.lead"
    else:
        assert last.rule_id == rule_id and last.points == 0
        assert decision.reasons[-2].rule_id == "stage.lead"


def test_never_backwards_reason_text() -> None:
    decision = qualify(profile(current_stage=Stage.MQL, title="x"), model(), NOW)
    assert decision.reasons[-1].detail == (
        "stays MQL (scored LEAD): stages never move backwards")


def test_scoring_moves_forward_from_an_earlier_stage() -> None:
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, 0), current_stage=Stage.LEAD),
                       model(), NOW)
    assert decision.stage is Stage.MQL and decision.reasons[-1].rule_id == "stage.mql"


def test_sales_owned_stage_is_kept_even_when_scoring_says_sql() -> None:
    decision = qualify(profile(act(A.DEMO_REQUEST, 1), current_stage=Stage.SAL), model(), NOW)
    assert decision.stage is Stage.SAL
    assert decision.reasons[-1] == Reason(
        "lifecycle.sales_owned", 0.0, "SAL is owned by sales; scoring would say SQL")


def test_sql_already_is_kept() -> None:
    decision = qualify(profile(current_stage=Stage.SQL, title="x"), model(), NOW)
    assert decision.stage is Stage.SQL
    assert decision.reasons[-1].rule_id == "lifecycle.sales_owned"


# ---------------------------------------------------------------- routing


def mql(owner: str | None = None) -> Decision:
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, 0), owner_email=owner), model(), NOW)
    assert decision.stage is Stage.MQL
    return decision


def test_routing_assigns_and_explains() -> None:
    decision, position = route(mql(), profile(), model(), REPS, 0)
    assert decision.owner_email == "dana@x.test" and position == 1
    assert decision.reasons[-1] == Reason("routing.round_robin", 0.0,
                                          "round robin 1/5: dana@x.test")
    assert decision.reasons[:-1] == mql().reasons


def test_weighted_round_robin_is_fair_over_1000_assignments() -> None:
    m, position, counts = model(), 0, collections.Counter[str]()
    sequence = []
    for _ in range(1000):
        decision, position = route(mql(), profile(), m, REPS, position)
        assert decision.owner_email is not None
        counts[decision.owner_email] += 1
        sequence.append(decision.owner_email)
    assert position == 1000
    assert counts["dana@x.test"] == pytest.approx(400, abs=2)
    for rep in REPS[1:]:
        assert counts[rep] == pytest.approx(200, abs=2)
    # Smooth: the weight-2 rep is never given two people in a row.
    assert all(a != b for a, b in itertools.pairwise(sequence))


def test_unavailable_reps_are_skipped() -> None:
    m, position, counts = model(), 0, collections.Counter[str]()
    available = ["DANA@x.test", "marco@x.test", "keiko@x.test", "someone.else@x.test"]
    for _ in range(400):
        decision, position = route(mql(), profile(), m, available, position)
        counts[decision.owner_email or ""] += 1
    assert set(counts) == {"dana@x.test", "marco@x.test", "keiko@x.test"}
    assert counts["dana@x.test"] == 200


def test_routing_is_deterministic_from_position() -> None:
    m = model()
    first = [route(mql(), profile(), m, REPS, p)[0].owner_email for p in range(12)]
    again = [route(mql(), profile(), m, REPS, p)[0].owner_email for p in range(12)]
    assert first == again
    assert first[:5] == first[5:10]  # the cycle (weights 2+1+1+1) repeats every 5
    assert route(mql(), profile(), m, REPS, 7)[0].owner_email == first[2]


def test_no_assignment_below_assign_at_or_when_owned() -> None:
    m = model()
    lead = qualify(profile(title="x"), m, NOW)
    assert route(lead, profile(), m, REPS, 3) == (lead, 3)
    owned = mql(owner="keiko@x.test")
    assert route(owned, profile(), m, REPS, 3) == (owned, 3)
    at_sql = model(routing={"assign_at": "sql"})
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, 0)), at_sql, NOW)
    assert route(decision, profile(), at_sql, REPS, 3) == (decision, 3)
    sql = qualify(profile(act(A.DEMO_REQUEST, 0)), at_sql, NOW)
    assert route(sql, profile(), at_sql, REPS, 3)[1] == 4


def test_sales_owned_without_owner_is_routed() -> None:
    decision = qualify(profile(current_stage=Stage.SAL, title="x"), model(), NOW)
    assert route(decision, profile(), model(), REPS, 0)[0].owner_email == "dana@x.test"


def test_nobody_available_leaves_it_unassigned_with_a_reason() -> None:
    decision, position = route(mql(), profile(), model(), ["other@x.test"], 5)
    assert decision.owner_email is None and position == 5
    assert decision.reasons[-1].rule_id == "routing.unassigned"


def test_negative_position_is_rejected() -> None:
    with pytest.raises(ValueError, match="position"):
        route(mql(), profile(), model(), REPS, -1)


# ---------------------------------------------------------------- summary and breakdown


def rich() -> Decision:
    m = model(fit={"rules": [
        {"id": "vp_title", "field": "title", "contains": "vp", "points": 15},
        {"id": "free_mail", "field": "email", "email_domain_in": ["acme.example"],
         "points": -2}], "grades": [{"grade": "B", "min": 0}]})
    return qualify(profile(act(A.DEMO_REQUEST, 2, form="Request a demo"),
                           act(A.PRICING_PAGE_VIEW, 4), act(A.PRICING_PAGE_VIEW, 5),
                           act(A.EMAIL_BOUNCE, 40)), m, NOW)


def test_summary_shows_stage_first_then_largest_points() -> None:
    text = summarize(rich(), 500)
    # 40 * 0.5 ** (2 / 30) = 38.19; 12 * (0.5 ** (4 / 30) + 0.5 ** (5 / 30)) = 21.63
    assert text == ("SQL 58 (fit B): hand-raise: demo_request 2026-10-03; "
                    "demo request 2026-10-03 +38.2; pricing page x2 2026-10-01 +21.6; "
                    "email bounce 2026-08-26 -15; vp title +15; free mail -2")


def test_summary_puts_the_lifecycle_reason_first() -> None:
    decision = qualify(profile(current_stage=Stage.MQL), model(), NOW)
    assert summarize(decision, 200) == (
        "MQL 20 (fit A): stays MQL (scored LEAD): stages never move backwards; "
        "not MQL: score 20 below 30; vp title +20")


@pytest.mark.parametrize("limit", range(1, 160))
def test_summary_never_exceeds_the_limit_and_cuts_between_reasons(limit: int) -> None:
    full = summarize(rich(), 10_000)
    text = summarize(rich(), limit)
    assert len(text) <= limit
    if len(full) <= limit:
        assert text == full
    else:
        assert text.endswith("…")
        kept = text.removesuffix("…").removesuffix(" ").removesuffix(";").removesuffix(":")
        # What is kept is a prefix of the full text that ends on a reason boundary
        # (or, when even the header does not fit, a cut header).
        assert full.startswith(kept)
        if len(text) > len("SQL 58 (fit B)"):
            assert full[len(kept)] in ";:"


def test_summary_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError):
        summarize(rich(), 0)


def test_breakdown_lists_every_reason_with_points_and_date() -> None:
    decision = rich()
    lines = breakdown(decision)
    assert len(lines) == len(decision.reasons)
    assert lines[0].split() == ["fit.vp_title", "+15.00", "-", "title", "'VP", "Sales'",
                                "contains", "'vp'"]
    demo = next(line for line in lines if line.startswith("engagement.demo_request"))
    assert "+38.19" in demo and "2026-10-03 12:00Z" in demo
    assert "demo_request 'Request a demo' 2026-10-03, 40 decayed x0.95" in demo


def test_summary_groups_per_rule() -> None:
    decision = rich()
    split = [dataclasses.replace(r, points=r.points / 2) for r in decision.reasons
             if r.rule_id == "engagement.pricing_page"]
    doubled = dataclasses.replace(decision, reasons=decision.reasons + tuple(split))
    assert "pricing page x4 2026-10-01 +32.4" in summarize(doubled, 500)
