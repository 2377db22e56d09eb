"""The model language beyond the standard fields (docs/model-language.md): any person
field, points tables, bins, negated conditions, conditions on activity attributes, person
rules in engagement and aggregates over a window. Each is checked through `qualify`,
the function the sync runs, on the points and the Reasons a rep reads."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncer.domain.types import Activity, ActivityType, Person, Profile
from syncer.qualify import ModelError, load_model, parse_model, qualify

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def model(fit: list[dict[str, Any]] | None = None,
          engagement: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
    return parse_model({
        "name": "language",
        "fit": {"rules": fit or [], "grades": [{"grade": "A", "min": 20},
                                               {"grade": "B", "min": -1000}]},
        "engagement": {"rules": engagement or []},
        "qualification": {"mql_score": 30},
        **extra,
    })


def person(properties: dict[str, Any] | None = None, source: str = "hubspot",
           record_id: str = "1", **fields: Any) -> Person:
    return Person(source, record_id, "contact", fields.pop("email", "ana@example.com"),
                  properties=properties or {}, **fields)


def activity(kind: ActivityType, days_ago: float, n: int = 0, **attributes: str) -> Activity:
    return Activity("hubspot", f"a{n}-{kind.value}-{days_ago}", "1", kind,
                    NOW - timedelta(days=days_ago), attributes)


def profile(*records: Person, activities: tuple[Activity, ...] = ()) -> Profile:
    return Profile("ana@example.com", records or (person(),), activities)


def points_of(decision: Any, rule_id: str) -> float:
    return math.fsum(r.points for r in decision.reasons if r.rule_id == rule_id)


# ---------------------------------------------------------------- person fields and tables

SOURCE_TABLE = {"id": "source", "field": "source",
                "table": {"Referral": 25, "Paid Search": 3, "Purchased list": -10},
                "default": 1, "missing": -2}


@pytest.mark.parametrize(("value", "points", "detail"), [
    ("referral", 25, "source 'referral' in the table"),
    (" PAID SEARCH ", 3, "source ' PAID SEARCH ' in the table"),
    ("Billboard", 1, "source 'Billboard' not in the table (default)"),
    (None, -2, "source is missing"),
    ("", -2, "source is missing"),
])
def test_a_points_table_scores_each_value_its_default_and_missing(
        value: str | None, points: float, detail: str) -> None:
    decision = qualify(profile(person({"source": value})), model([SOURCE_TABLE]), NOW)
    [reason] = [r for r in decision.reasons if r.rule_id == "fit.source"]
    assert (reason.points, reason.detail) == (points, detail)
    assert decision.fit_points == points


def test_the_first_record_with_a_value_wins_across_records() -> None:
    first = person({"source": ""}, "salesforce", "00Q1")
    second = person({"source": "Referral"})
    decision = qualify(profile(first, second), model([SOURCE_TABLE]), NOW)
    assert decision.fit_points == 25


def test_yaml_booleans_as_table_keys_are_refused_with_the_fix() -> None:
    rule = {"id": "dne", "field": "do_not_email", "table": {True: -20}}
    with pytest.raises(ModelError, match="quote it"):
        model([rule])


@pytest.mark.parametrize(("rule", "message"), [
    ({"id": "t", "field": "source", "table": {"a": 1}, "points": 3},
     "a `table` gives its own points; points do not apply"),
    ({"id": "t", "field": "source", "table": {"a": 1}, "group": "g"},
     "cannot be in a group"),
    ({"id": "b", "field": "visits", "bins": [{"below": 3, "points": 1}]},
     "the last bin must have no `below`"),
    ({"id": "b", "field": "visits", "bins": [{"below": 5, "points": 1},
                                             {"below": 2, "points": 2}, {"points": 3}]},
     "strictly rising `below`"),
    ({"id": "b", "field": "title", "bins": [{"points": 1}]}, "bins score a number"),
    ({"id": "c", "field": "source", "equals": "x", "points": 1, "missing": -3},
     "gives points only in a `table` or `bins`"),
    ({"id": "c", "field": "source", "missing": True, "not": True, "points": 1},
     "`not` does not combine with `missing`"),
])
def test_bad_tables_bins_and_conditions_name_the_fix(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match="Fix:") as raised:
        model([rule])
    assert message in str(raised.value)


# ---------------------------------------------------------------- bins and numbers

TIME_BINS = {"id": "time_on_site", "field": "time_on_site", "missing": -5,
             "bins": [{"below": 60, "points": -3}, {"below": 300, "points": 5},
                      {"points": 12}]}


@pytest.mark.parametrize(("value", "points"), [
    (0, -3), (59.9, -3), (60, 5), ("299", 5), ("1,200", 12), (300.0, 12),
    (None, -5), ("n/a", -5),
])
def test_bins_score_numbers_from_text_or_numbers(value: object, points: float) -> None:
    decision = qualify(profile(person({"time_on_site": value})), model([TIME_BINS]), NOW)
    assert decision.fit_points == points


def test_min_max_read_a_property_as_a_number_and_not_negates() -> None:
    rules = [{"id": "busy", "field": "visits", "min": 3, "max": 10.5, "points": 4},
             {"id": "not_google", "field": "source", "in": ["google", "bing"], "not": True,
              "points": 2}]
    scored = {v: qualify(profile(person({"visits": v, "source": s})), model(rules), NOW)
              for v, s in (("3", "Google"), (10.5, "Referral"), (11, None), ("x", "bing"))}
    assert scored["3"].fit_points == 4          # 3 visits, Google listed: not does not hold
    assert scored[10.5].fit_points == 6         # in range, Referral is not listed
    assert scored[11].fit_points == 0           # out of range; a missing source never holds
    assert scored["x"].fit_points == 0


# ---------------------------------------------------------------- activity attributes

def test_where_conditions_equals_is_not_contains() -> None:
    """`where: {campaign: other}` (contains) matches other_publicities; `equals` does not."""
    rules = [{"id": "contains", "activity": "form_fill", "where": {"campaign": "other"},
              "points": 5},
             {"id": "equals", "activity": "form_fill",
              "where": {"campaign": {"equals": "other"}}, "points": 7}]
    acts = (activity(ActivityType.FORM_FILL, 1, campaign="other_publicities"),)
    decision = qualify(profile(activities=acts), model(engagement=rules), NOW)
    assert points_of(decision, "engagement.contains") == 5
    assert points_of(decision, "engagement.equals") == 0


def test_where_regex_numeric_range_and_missing_attribute() -> None:
    rules = [{"id": "pricing", "activity": "page_view",
              "where": {"url": {"regex": "^/(pricing|plans)$"}, "duration": {"min": 30}},
              "points": 4},
             {"id": "untracked", "activity": "page_view",
              "where": {"utm_source": {"missing": True}}, "points": 1}]
    acts = (activity(ActivityType.PAGE_VIEW, 1, 1, url="/pricing", duration="45"),
            activity(ActivityType.PAGE_VIEW, 1, 2, url="/pricing", duration="10"),
            activity(ActivityType.PAGE_VIEW, 1, 3, url="/pricing/faq", duration="90",
                     utm_source="ads"))
    decision = qualify(profile(activities=acts), model(engagement=rules), NOW)
    assert points_of(decision, "engagement.pricing") == 4     # only the 45 s one
    assert points_of(decision, "engagement.untracked") == 2   # the two without utm_source


# ---------------------------------------------------------------- engagement from fields

def test_person_rules_in_engagement_count_as_engagement_without_decay() -> None:
    rules = [{"id": "visits", "field": "visits",
              "bins": [{"below": 2, "points": 0}, {"below": 5, "points": 6}, {"points": 15}]}]
    decision = qualify(profile(person({"visits": 7})), model(engagement=rules), NOW)
    assert decision.engagement_points == 15 and decision.fit_points == 0
    [reason] = [r for r in decision.reasons if r.rule_id == "engagement.visits"]
    assert reason.detail == "visits 7 >= 5"


# ---------------------------------------------------------------- aggregates

def visits(*days_ago: float, **attributes: str) -> tuple[Activity, ...]:
    return tuple(activity(ActivityType.PAGE_VIEW, d, n, **attributes)
                 for n, d in enumerate(days_ago))


AT_LEAST_3 = {"id": "frequent", "activity": "page_view", "measure": "count",
              "within_days": 30, "min": 3, "points": 10}


@pytest.mark.parametrize(("days", "points"), [
    ((1, 2), 0), ((1, 2, 29), 10), ((1, 2, 31), 0), ((1, 2, 3, 4, 5), 10),
])
def test_at_least_three_visits_in_thirty_days(days: tuple[float, ...], points: float) -> None:
    decision = qualify(profile(activities=visits(*days)), model(engagement=[AT_LEAST_3]), NOW)
    assert points_of(decision, "engagement.frequent") == points


def test_sum_max_and_days_since_last_with_their_missing_points() -> None:
    rules = [{"id": "minutes", "activity": ["page_view", "webinar_attendance"],
              "measure": "sum", "attribute": "duration",
              "bins": [{"below": 100, "points": 0}, {"points": 8}]},
             {"id": "longest", "activity": "page_view", "measure": "max",
              "attribute": "duration", "min": 90, "points": 3, "missing": -1},
             {"id": "recency", "activity": "form_fill", "measure": "days_since_last",
              "bins": [{"below": 7, "points": 10}, {"points": 2}], "missing": -4}]
    acts = (*visits(1, 3, duration="60"),
            activity(ActivityType.WEBINAR_ATTENDANCE, 2, duration="x"))
    decision = qualify(profile(activities=acts), model(engagement=rules), NOW)
    assert points_of(decision, "engagement.minutes") == 8     # 120 s; "x" is left out
    assert points_of(decision, "engagement.longest") == 0     # 60 < 90
    assert points_of(decision, "engagement.recency") == -4    # no form fill at all
    recent = (*acts, activity(ActivityType.FORM_FILL, 3.5))
    again = qualify(profile(activities=recent), model(engagement=rules), NOW)
    [reason] = [r for r in again.reasons if r.rule_id == "engagement.recency"]
    assert reason.points == 10
    assert reason.detail == \
        f"days since last form_fill: 3 < 7, latest {(NOW - timedelta(days=3.5)).date()}"
    assert reason.evidence_at == NOW - timedelta(days=3.5)


def test_aggregate_activity_types_count_as_engagement_for_inactivity() -> None:
    rules = [AT_LEAST_3, {"id": "quiet", "inactive_days": 60, "points": -10}]
    decision = qualify(profile(activities=visits(1)), model(engagement=rules), NOW)
    assert points_of(decision, "engagement.quiet") == 0


# ---------------------------------------------------------------- properties

tables = st.dictionaries(st.sampled_from(["a", "b", "Referral", "paid"]),
                         st.integers(-30, 30), min_size=1)
values = st.one_of(st.none(), st.sampled_from(["A", "b ", "referral", "PAID", "other", ""]))


@settings(max_examples=150, deadline=None)
@given(tables, st.integers(-10, 10), st.integers(-10, 10), values)
def test_a_table_gives_the_entry_else_the_default_else_missing(
        table: dict[str, int], default: int, missing: int, value: str | None) -> None:
    rule = {"id": "t", "field": "source", "table": table, "default": default,
            "missing": missing}
    decision = qualify(profile(person({"source": value})), model([rule]), NOW)
    lowered = {k.lower(): v for k, v in table.items()}
    if value is None or value == "":
        expected = missing
    else:
        expected = lowered.get(value.strip().lower(), default)
    assert decision.fit_points == expected
    assert decision.score == round(math.fsum(r.points for r in decision.reasons))
    assert math.isclose(math.fsum(e.points for e in decision.scores[0].ledger),
                        decision.score, abs_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-50, 500), min_size=1, max_size=5, unique=True),
       st.lists(st.integers(-20, 20), min_size=6, max_size=6),
       st.one_of(st.none(), st.floats(-100, 1000, allow_nan=False)))
def test_bins_give_the_first_bin_the_value_is_below(
        edges: list[int], points: list[int], value: float | None) -> None:
    edges.sort()
    bins = [{"below": e, "points": p} for e, p in zip(edges, points, strict=False)]
    bins.append({"points": points[len(edges)]})
    rule = {"id": "b", "field": "visits", "bins": bins, "missing": points[5]}
    decision = qualify(profile(person({"visits": value})), model([rule]), NOW)
    if value is None:
        expected = points[5]
    else:
        expected = next((p for e, p in zip(edges, points, strict=False) if value < e),
                        points[len(edges)])
    assert decision.fit_points == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 60, allow_nan=False), max_size=8), st.integers(1, 6),
       st.integers(5, 40))
def test_a_count_threshold_holds_exactly_when_enough_fall_in_the_window(
        days: list[float], at_least: int, within: int) -> None:
    rule = {**AT_LEAST_3, "within_days": within, "min": at_least}
    decision = qualify(profile(activities=visits(*days)), model(engagement=[rule]), NOW)
    inside = sum(1 for d in days if d <= within)
    assert points_of(decision, "engagement.frequent") == (10 if inside >= at_least else 0)


# ---------------------------------------------------------------- old model files

OLD_MODEL = Path(__file__).parent / "data" / "model-before-issue-14.yaml"


def test_a_model_file_written_before_the_new_language_keeps_its_version() -> None:
    """The shipped model as it was before tables, bins and aggregates existed: it loads
    unchanged and keeps the version the audit log cites (computed by the code of then)."""
    assert load_model(OLD_MODEL).version == "default@bca9752ffc95"
