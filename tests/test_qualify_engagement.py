"""Engagement features beyond v1: stepwise decay, caps per fixed time window, inactivity
rules, negative `where` rules, and what counts as engagement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncer.domain.types import Activity, ActivityType, Decision, Person, Profile
from syncer.qualify import Model, parse_model, qualify

#: A Monday, noon UTC: the current 7-day window began 12 hours ago.
NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
A = ActivityType
STEPS = [{"max_age_days": 7, "factor": 1.0}, {"max_age_days": 30, "factor": 0.5},
         {"max_age_days": 90, "factor": 0.25}]


def act(kind: ActivityType, days_ago: float, n: int = 0, **attributes: str) -> Activity:
    return Activity(source="hubspot", source_id=f"{kind.value}-{days_ago}-{n}", record_id="1",
                    type=kind, occurred_at=NOW - timedelta(days=days_ago),
                    attributes=attributes)


def profile(*activities: Activity) -> Profile:
    person = Person(source="hubspot", record_id="1", object_type="contact",
                    email="ann.lee@acme.example")
    return Profile(key="ann.lee@acme.example", records=(person,), activities=activities)


def model(rules: list[dict[str, Any]], **engagement: Any) -> Model:
    return parse_model({
        "name": "t", "fit": {"grades": [{"grade": "A", "min": 0}]},
        "engagement": {"rules": rules, **engagement},
        "qualification": {"mql_score": 50}})


def rule(kind: ActivityType, points: float, **extra: Any) -> dict[str, Any]:
    return {"id": extra.pop("id", kind.value), "activity": kind.value, "points": points,
            **extra}


def fired(decision: Decision) -> dict[str, float]:
    return {r.rule_id: r.points for r in decision.reasons if r.points}


def reason(decision: Decision, rule_id: str) -> Any:
    return next(r for r in decision.reasons if r.rule_id == rule_id)


# ---------------------------------------------------------------- stepwise decay


@pytest.mark.parametrize(("days", "points"), [
    (0, 12.0), (7, 12.0), (7.01, 6.0), (30, 6.0), (45, 3.0), (90, 3.0), (90.01, None),
])
def test_stepwise_decay_keeps_the_factor_of_the_step_an_activity_falls_in(
        days: float, points: float | None) -> None:
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, days)),
                       model([rule(A.PRICING_PAGE_VIEW, 12)], decay_steps=STEPS), NOW)
    assert fired(decision) == ({} if points is None else {"engagement.pricing_page_view": points})


def test_stepwise_decay_is_explained() -> None:
    decision = qualify(profile(act(A.PRICING_PAGE_VIEW, 45, url="https://x.test/pricing")),
                       model([rule(A.PRICING_PAGE_VIEW, 12)], decay_steps=STEPS), NOW)
    assert reason(decision, "engagement.pricing_page_view").detail == (
        "pricing_page_view /pricing 2026-08-21, 12 decayed x0.25")
    several = qualify(profile(act(A.PRICING_PAGE_VIEW, 1), act(A.PRICING_PAGE_VIEW, 20)),
                      model([rule(A.PRICING_PAGE_VIEW, 12)], decay_steps=STEPS), NOW)
    assert reason(several, "engagement.pricing_page_view").detail == (
        "2x pricing_page_view, latest 2026-10-04; 12 each, decayed to 18.00")


def test_negative_points_ignore_the_steps_and_count_for_the_whole_lookback() -> None:
    m = model([rule(A.EMAIL_BOUNCE, -15), rule(A.EMAIL_CLICK, 4)], decay_steps=STEPS,
              lookback_days=150)
    decision = qualify(profile(act(A.EMAIL_BOUNCE, 120), act(A.EMAIL_CLICK, 120)), m, NOW)
    assert fired(decision) == {"engagement.email_bounce": -15.0}


# ---------------------------------------------------------------- caps per time window


def clicks(*days_ago: float) -> Profile:
    return profile(*(act(A.EMAIL_CLICK, d, n=i, email="Product update")
                     for i, d in enumerate(days_ago)))


WEEKLY = {"max_points_per": {"days": 7, "points": 6}}


def test_window_cap_bounds_each_week() -> None:
    # 0.1-0.3 days ago: this week (since Monday 00:00 UTC); 0.6 days ago: Sunday, last week.
    decision = qualify(clicks(0.1, 0.2, 0.3, 0.6), model([rule(A.EMAIL_CLICK, 4, **WEEKLY)]),
                       NOW)
    assert decision.engagement_points == 6 + 4
    assert reason(decision, "engagement.email_click").detail == (
        "4x email_click, latest 'Product update' 2026-10-05; 4 each "
        "(at most 6 per 7 days: reached in 1 window)")


def test_windows_are_fixed_not_sliding() -> None:
    """Sunday evening and Monday morning are 7 hours apart but in two weekly windows."""
    m = model([rule(A.EMAIL_CLICK, 4, max_points_per={"days": 7, "points": 4})])
    assert qualify(clicks(0.45, 0.75), m, NOW).engagement_points == 8
    assert qualify(clicks(0.1, 0.3), m, NOW).engagement_points == 4


def test_window_cap_and_total_cap_combine() -> None:
    m = model([rule(A.EMAIL_CLICK, 4, max_points=8, **WEEKLY)])
    decision = qualify(clicks(0.1, 0.2, 0.3, 0.6, 8), m, NOW)
    assert decision.engagement_points == 8
    detail = reason(decision, "engagement.email_click").detail
    assert detail.endswith("(at most 6 per 7 days: reached in 1 window) (capped at 8) "
                           "(1 older not counted)")


def test_window_cap_applies_to_decayed_points() -> None:
    m = model([rule(A.EMAIL_CLICK, 4, **WEEKLY)], half_life_days=7)
    # Last week: 4 * (0.5 ** (8 / 7) + 0.5 ** (9 / 7)) = 3.46, under the cap of 6.
    decision = qualify(clicks(0.1, 0.2, 8, 9), m, NOW)
    this_week = 6.0
    last_week = 4 * (0.5 ** (8 / 7) + 0.5 ** (9 / 7))
    assert decision.engagement_points == pytest.approx(this_week + last_week)


def test_window_cap_on_a_negative_rule() -> None:
    m = model([rule(A.PAGE_VIEW, -4, id="careers", where={"url": "/careers"},
                    max_points_per={"days": 30, "points": 5})])
    views = profile(*(act(A.PAGE_VIEW, d, n=d, url="https://x.test/careers")
                      for d in (1, 2, 3)))
    assert fired(qualify(views, m, NOW)) == {"engagement.careers": -5.0}


# ---------------------------------------------------------------- inactivity


QUIET = {"id": "quiet", "inactive_days": 30, "points": -5}


def test_inactivity_fires_after_the_span_and_cites_the_last_engagement() -> None:
    m = model([rule(A.PAGE_VIEW, 1), QUIET])
    decision = qualify(profile(act(A.PAGE_VIEW, 40), act(A.PAGE_VIEW, 45, n=1)), m, NOW)
    quiet = reason(decision, "engagement.quiet")
    assert quiet.points == -5
    assert quiet.detail == ("no engagement for 30+ days (last: page_view 2026-08-26, "
                            "40 days ago)")
    assert quiet.evidence_at == NOW - timedelta(days=40)
    assert decision.engagement_points == 2 - 5
    assert "engagement.quiet" not in fired(qualify(profile(act(A.PAGE_VIEW, 29)), m, NOW))


def test_no_engagement_on_record_counts_as_inactive() -> None:
    decision = qualify(profile(), model([rule(A.PAGE_VIEW, 1), QUIET]), NOW)
    quiet = reason(decision, "engagement.quiet")
    assert (quiet.points, quiet.detail, quiet.evidence_at) == (
        -5.0, "no engagement on record", None)


def test_inactivity_rules_add_up() -> None:
    m = model([rule(A.PAGE_VIEW, 1), QUIET,
               {"id": "silent", "inactive_days": 90, "points": -10}])
    assert fired(qualify(profile(act(A.PAGE_VIEW, 100)), m, NOW)) == {
        "engagement.page_view": 1.0, "engagement.quiet": -5.0, "engagement.silent": -10.0}
    assert fired(qualify(profile(act(A.PAGE_VIEW, 60)), m, NOW)) == {
        "engagement.page_view": 1.0, "engagement.quiet": -5.0}


def test_engagement_is_what_positive_rules_score_unless_listed() -> None:
    opens = profile(act(A.EMAIL_OPEN, 1))
    by_default = model([rule(A.EMAIL_OPEN, 0.5), QUIET])
    assert "engagement.quiet" not in fired(qualify(opens, by_default, NOW))
    listed = model([rule(A.EMAIL_OPEN, 0.5), rule(A.PAGE_VIEW, 1), QUIET],
                   engaged_activities=["page_view"])
    assert fired(qualify(opens, listed, NOW))["engagement.quiet"] == -5.0
    # Negative rules never make an activity "engagement".
    negative = model([rule(A.UNSUBSCRIBE, -20), rule(A.PAGE_VIEW, 1), QUIET])
    assert "engagement.quiet" in fired(qualify(profile(act(A.UNSUBSCRIBE, 1)), negative, NOW))


def test_engagement_older_than_the_lookback_still_dates_the_inactivity() -> None:
    m = model([rule(A.PAGE_VIEW, 1), {"id": "quiet", "inactive_days": 365, "points": -5}],
              lookback_days=90)
    assert "engagement.quiet" not in fired(qualify(profile(act(A.PAGE_VIEW, 200)), m, NOW))
    assert "engagement.quiet" in fired(qualify(profile(act(A.PAGE_VIEW, 366)), m, NOW))


def test_future_activities_are_not_engagement() -> None:
    m = model([rule(A.PAGE_VIEW, 1), QUIET])
    decision = qualify(profile(act(A.PAGE_VIEW, -2), act(A.PAGE_VIEW, 50, n=1)), m, NOW)
    assert "50 days ago" in reason(decision, "engagement.quiet").detail


def test_latest_engagement_tie_is_broken_by_source_and_id() -> None:
    m = model([rule(A.PAGE_VIEW, 1), rule(A.FORM_FILL, 1), QUIET])
    first, second = act(A.PAGE_VIEW, 40), act(A.FORM_FILL, 40)
    for order in ((first, second), (second, first)):
        detail = reason(qualify(profile(*order), m, NOW), "engagement.quiet").detail
        assert "(last: page_view" in detail  # "page_view-40-0" > "form_fill-40-0"


# ---------------------------------------------------------------- negative where rules


def test_a_negative_rule_on_some_pages_only() -> None:
    m = model([rule(A.PAGE_VIEW, 1, id="any_page"),
               rule(A.PAGE_VIEW, -3, id="careers", where={"url": "/careers"}, max_count=1)])
    decision = qualify(profile(act(A.PAGE_VIEW, 1, url="https://x.test/careers"),
                               act(A.PAGE_VIEW, 2, n=1, url="https://x.test/careers/eng"),
                               act(A.PAGE_VIEW, 3, n=2, url="https://x.test/product")), m, NOW)
    assert fired(decision) == {"engagement.any_page": 3.0, "engagement.careers": -3.0}
    assert reason(decision, "engagement.careers").detail.endswith("(1 older not counted)")
