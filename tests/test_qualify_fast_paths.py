"""The core's fast paths give exactly what the general code gives: the constructors of
frozen domain objects, the memo of `where` tests, one activity without sorting or lists,
sorting by age alone, the remembered day texts and decay texts. Each is compared with the
plain computation (repr too, so that floats are equal to the last bit), over random models
and activities where that is what could differ."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncer.domain.types import (
    Activity,
    Decision,
    LedgerEntry,
    Reason,
    ScoreCard,
    Stage,
)
from syncer.qualify import Model, load_model
from syncer.qualify.activity_points import (
    _by_recency,
    _counted_reason,
    _recency,
    _tally,
    iso_day,
    rule_points,
    rule_reason,
)
from syncer.qualify.construct import ledger_line, new_card, new_decision, new_reason
from syncer.qualify.plan import WHERE_MEMO_SIZE, ActivityMatcher, WhereIndex, where_holds
from syncer.qualify.value_tests import where_tests
from tests.test_qualify_properties import ROOT, attributes, random_models

AT = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
NOW_TS = AT.timestamp()
DAY = 86_400.0


def same(a: object, b: object) -> None:
    """Equal, and equal in repr (which tells 0.0 from -0.0 and shows every float digit)."""
    assert a == b
    assert repr(a) == repr(b)


def test_fast_constructors_make_ordinary_objects() -> None:
    line = ledger_line("engagement.x", 8.4, "page_view /pricing", "hubspot:1", AT, 0.7)
    reason = new_reason("engagement.x", 8.4, "page_view /pricing 2026-10-05", AT)
    card = new_card("primary", 20.0, 8.4, 28, "B", (line,))
    decision = new_decision("kim@acme.example", 28, 20.0, 8.4, "B", Stage.LEAD, None,
                            (reason,), "m@1", (card,))
    slow_line = LedgerEntry("engagement.x", 8.4, "page_view /pricing", "hubspot:1", AT, 0.7)
    slow_reason = Reason("engagement.x", 8.4, "page_view /pricing 2026-10-05", AT)
    slow_card = ScoreCard("primary", 20.0, 8.4, 28, "B", (slow_line,))
    slow_decision = Decision("kim@acme.example", 28, 20.0, 8.4, "B", Stage.LEAD, None,
                             (slow_reason,), "m@1", (slow_card,))
    for fast, slow in ((line, slow_line), (reason, slow_reason), (card, slow_card),
                       (decision, slow_decision)):
        assert type(fast) is type(slow)
        same(fast, slow)
        assert hash(fast) == hash(slow)
        same(pickle.loads(pickle.dumps(fast)), slow)
    with pytest.raises(AttributeError):
        decision.score = 1  # type: ignore[misc]


# ---------------------------------------------------------------- where tests

WHERE_TEXTS = ("/product", "/pricing", "w.test", "contact", "PRODUCT", "")
wheres = st.lists(st.tuples(st.sampled_from(("url", "form", "email")),
                            st.sampled_from(WHERE_TEXTS)),
                  min_size=1, max_size=2, unique_by=lambda pair: pair[0])
values = st.sampled_from(("https://w.test/Product/x", "https://w.test/pricing", "Contact us",
                          "Product update", "", "HTTPS://W.TEST/PRICING"))
attribute_maps = st.dictionaries(st.sampled_from(("url", "form", "email", "asset")), values,
                                 max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(wheres, min_size=1, max_size=4), st.lists(attribute_maps, max_size=6))
def test_where_index_passes_exactly_the_rules_whose_where_holds(
        rule_wheres: list[list[tuple[str, str]]], activities: list[dict[str, str]]) -> None:
    """Single-attribute indexes answer from the memo, the others rule by rule; asked twice
    (the second time from the memo), both give what where_holds gives."""
    matchers = tuple((n, float(n), where_tests(dict(where)))
                     for n, where in enumerate(rule_wheres))
    index = WhereIndex(matchers)
    for attrs in activities * 2:
        expected = tuple((n, horizon) for n, horizon, where in matchers
                         if where_holds(where, attrs))
        assert index.passing(attrs) == expected


def test_where_index_memo_is_bounded_and_stays_right() -> None:
    index = WhereIndex(((0, 1.0, where_tests({"url": "/product"})),
                        (1, 2.0, where_tests({"url": "pricing"}))))
    assert index.key == "url"
    for n in range(WHERE_MEMO_SIZE * 2 + 10):
        url = f"https://w.test/{'product' if n % 3 == 0 else 'Pricing'}/{n}"
        assert index.passing({"url": url}) == (((0, 1.0),) if n % 3 == 0 else ((1, 2.0),))
        assert len(index.memo) <= WHERE_MEMO_SIZE
    assert index.passing({}) == ()
    assert index.passing({"form": "product"}) == ()


# ---------------------------------------------------------------- one activity, ordering


@st.composite
def hits_for(draw: st.DrawFn, matcher: ActivityMatcher, size: int) -> list[tuple[float, Activity]]:
    """`size` activities a rule counts (within its horizon), ages and ids from small sets so
    that activities at the same instant occur."""
    ages = st.sampled_from([0.0, 0.5 * DAY, 3 * DAY, 3.5 * DAY, 7 * DAY]) | st.floats(
        0, matcher.horizon, allow_nan=False)
    hits = []
    for n in range(size):
        age = draw(ages)
        source = draw(st.sampled_from(("hubspot", "salesforce")))
        hits.append((age, Activity(source, f"a{draw(st.integers(0, 3))}{n}", "1",
                                   matcher.activity, datetime.fromtimestamp(NOW_TS - age, UTC),
                                   draw(attributes))))
    return hits


def engagement_matchers(model: Model) -> list[ActivityMatcher]:
    return [*model.plan.engagement,
            *(m for score in model.plan.named for m in score.engagement or ())]


@settings(max_examples=150, deadline=None)
@given(random_models(), st.data())
def test_one_activity_fast_path_is_the_general_path(model: Model, data: st.DataObject) -> None:
    """rule_reason / rule_points on one activity take a shortcut unless a window cap takes
    some of its points; the Reason, points and ledger lines are those of the general path."""
    for matcher in engagement_matchers(model):
        hit = data.draw(hits_for(matcher, 1))
        fast_lines: list[LedgerEntry] = []
        general_lines: list[LedgerEntry] = []
        same(rule_reason(matcher, list(hit), fast_lines),
             _counted_reason(matcher, list(hit), general_lines))
        same(fast_lines, general_lines)
        point_lines: list[LedgerEntry] = []
        same(rule_points(matcher, list(hit), point_lines), _tally(matcher, list(hit), [])[0])
        same(point_lines, general_lines)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_sorting_by_age_then_ties_is_sorting_by_the_full_key(data: st.DataObject) -> None:
    matcher = load_model(ROOT / "config" / "model.example.yaml").plan.engagement[0]
    hits = data.draw(hits_for(matcher, data.draw(st.integers(2, 8))))
    expected = sorted(hits, key=_recency)
    _by_recency(hits)
    assert hits == expected


def test_decay_step_texts_are_the_formatted_factors() -> None:
    model = load_model(ROOT / "config" / "model.example.yaml")
    plan = model.plan
    assert model.engagement.decay_steps
    factors = [step.factor for step in model.engagement.decay_steps]
    decaying = [m for m in plan.engagement if m.decay is not None]
    assert decaying
    for matcher in decaying:
        assert matcher.decayed == {
            factor: f", {matcher.points:g} decayed x{factor:.2f}" for factor in factors}
    assert all(not m.decayed for m in plan.engagement if m.decay is None)


offsets = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)),
                    st.integers(-14 * 60, 14 * 60))
zones: st.SearchStrategy[tzinfo | None] = st.none() | st.just(UTC) | offsets
instants = st.builds(lambda naive, zone: naive.replace(tzinfo=zone),
                     st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)), zones)


@settings(max_examples=200, deadline=None)
@given(instants)
def test_day_texts_are_the_dates_of_the_datetimes_own_fields(at: datetime) -> None:
    """As date() does: the day in the datetime's own time zone, not in UTC."""
    assert iso_day(at.toordinal()) == at.date().isoformat()
