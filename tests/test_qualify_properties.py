"""Properties of the core that must hold for every profile, checked with hypothesis on the
shipped model, on a v1-style model (half-life, caps, groups, `where`), and on a model that
uses every later feature (matrix qualification, window caps, stepwise decay, inactivity,
recycle chains, disqualify rules on people and on activities)."""

from __future__ import annotations

import math
import pathlib
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from syncer.domain.types import SALES_OWNED_STAGES, Activity, ActivityType, Person, Profile, Stage
from syncer.qualify import Model, load_model, parse_model, qualify, route, summarize

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
DAY = 86_400

EXAMPLE = load_model(ROOT / "config" / "model.example.yaml")
REPS = {"reps": [{"email": "a@x.test", "weight": 3}, {"email": "b@x.test"}]}
CAPPED = parse_model({
    "name": "capped",
    "fit": {"rules": [
        {"id": "senior", "field": "title", "contains": ["vp", "director"], "points": 20,
         "group": "seniority"},
        {"id": "manager", "field": "title", "contains": "manager", "points": 7.5,
         "group": "seniority"},
        {"id": "size", "field": "employees", "min": 50, "points": 10},
        {"id": "free", "field": "email", "email_domain_in": ["gmail.com"], "points": -12},
        {"id": "no_company", "field": "company", "missing": True, "points": -3}],
        "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": 0}]},
    "engagement": {"half_life_days": 7, "lookback_days": 60, "rules": [
        {"id": "pricing", "activity": "pricing_page_view", "points": 9, "max_count": 2},
        {"id": "product", "activity": "page_view", "where": {"url": "/product"},
         "points": 2.5, "max_points": 6},
        {"id": "views", "activity": "page_view", "points": 1, "max_points": 3.3},
        {"id": "opens", "activity": "email_open", "points": 0.7},
        {"id": "demo", "activity": "demo_request", "points": 30},
        {"id": "bounce", "activity": "email_bounce", "points": -15, "max_points": 20},
        {"id": "unsub", "activity": "unsubscribe", "points": -25, "max_count": 1}]},
    "qualification": {"mql_score": 25, "min_fit": 0, "min_engagement": 2,
                      "hand_raise_days": 30},
    "routing": REPS,
})
FULL = parse_model({
    "name": "full",
    "fit": {"rules": [
        {"id": "senior", "field": "title", "regex": r"\b(vp|director|ceo)\b", "points": 25},
        {"id": "size", "field": "employees", "min": 100, "points": 15},
        {"id": "intern", "field": "title", "contains": ["intern", "student"], "points": -20}],
        "grades": [{"grade": "A", "min": 30}, {"grade": "B", "min": 15},
                   {"grade": "C", "min": 0}]},
    "engagement": {
        "decay_steps": [{"max_age_days": 3, "factor": 1}, {"max_age_days": 20, "factor": 0.6},
                        {"max_age_days": 90, "factor": 0.25}],
        "lookback_days": 120,
        "bands": [{"band": 1, "min": 12}, {"band": 2, "min": 4}, {"band": 3, "min": -1000}],
        "rules": [
            {"id": "pricing", "activity": "pricing_page_view", "points": 12,
             "max_points_per": {"days": 7, "points": 15}},
            {"id": "clicks", "activity": "email_click", "points": 4,
             "max_points_per": {"days": 3.5, "points": 6}, "max_points": 14},
            {"id": "views", "activity": "page_view", "points": 1.5, "max_count": 4},
            {"id": "careers", "activity": "page_view", "where": {"url": "/careers"},
             "points": -4, "max_points_per": {"days": 30, "points": 5}},
            {"id": "webinar", "activity": "webinar_attendance", "points": 9},
            {"id": "demo", "activity": "demo_request", "points": 30},
            {"id": "unsub", "activity": "unsubscribe", "points": -20, "max_count": 1},
            {"id": "quiet_30", "inactive_days": 30, "points": -4},
            {"id": "quiet_75", "inactive_days": 75, "points": -6}]},
    "qualification": {"mode": "matrix", "matrix": ["A1", "A2", "B1", "C1"],
                      "hand_raise": ["demo_request"], "hand_raise_days": 45},
    "lifecycle": {
        "subscriber_activities": ["email_open", "email_click", "newsletter_signup"],
        "recycle": [
            {"id": "cold_mql", "from": ["mql"], "inactive_days": 40, "to": "recycled"},
            {"id": "cold_recycled", "from": ["recycled"], "inactive_days": 100, "to": "lead"}],
        "disqualify": [
            {"id": "competitor", "field": "email", "email_domain_in": ["routewise.io"]},
            {"id": "bounced", "activity": "email_bounce", "where": {"email": "product"}}],
        "keep_disqualified": False},
    "routing": REPS,
})
MODELS = (EXAMPLE, CAPPED, FULL)

TITLES = ("VP Sales", "Director of Marketing", "Marketing Manager", "Intern", "Student",
          "Founder & CEO", "Software Engineer", "", "Head of Revenue Operations")
URLS = ("https://w.test/product", "https://w.test/pricing", "https://w.test/careers",
        "https://w.test/integrations")
FORMS = ("Contact us", "Event sign-up", "Request a demo")

persons = st.builds(
    Person, source=st.just("hubspot"), record_id=st.just("1"), object_type=st.just("contact"),
    email=st.sampled_from(("kim@acme.example", "kim@gmail.com", "kim@routewise.io", None)),
    title=st.sampled_from(TITLES) | st.none(),
    company=st.sampled_from(("Acme", "", None)),
    industry=st.sampled_from(("Software", "Retail", "Healthcare", None)),
    employees=st.integers(1, 20_000) | st.none(),
    country=st.sampled_from(("United States", "Germany", "Brazil", None)),
)
attributes = st.fixed_dictionaries({}, optional={
    "url": st.sampled_from(URLS), "form": st.sampled_from(FORMS),
    "email": st.sampled_from(("Product update", "Monthly newsletter"))})
#: Some ages from a small set, so that activities at the same instant (ties) occur.
ages = st.floats(-5 * DAY, 200 * DAY, allow_nan=False) | st.sampled_from(
    [0.0, 3 * DAY, 3.5 * DAY, 7 * DAY, 40 * DAY])


@st.composite
def activity_lists(draw: st.DrawFn, min_age_days: float = -5.0) -> list[Activity]:
    """Activities from 5 days in the future (ignored) to 200 days back (some out of window)."""
    specs = draw(st.lists(st.tuples(
        st.sampled_from(list(ActivityType)), ages.filter(lambda a: a >= min_age_days * DAY),
        attributes), max_size=14))
    return [Activity("hubspot", f"a{n}", "1", kind, NOW - timedelta(seconds=age), attrs)
            for n, (kind, age, attrs) in enumerate(specs)]


def make_profile(person: Person, activities: list[Activity],
                 stage: Stage | None = None) -> Profile:
    return Profile(key="kim@acme.example", records=(person,), activities=tuple(activities),
                   current_stage=stage)


def only_positive(model: Model, kind: ActivityType) -> bool:
    """An activity type every rule scores positively and no disqualify rule names."""
    matchers = model.plan.by_activity.get(kind, ())
    return (all(m.points > 0 for m in matchers)
            and kind not in model.plan.disqualify_activities)


def qualified(stage: Stage) -> bool:
    return stage.rank >= Stage.MQL.rank


common = settings(max_examples=150, deadline=None)


@common
@given(st.sampled_from(MODELS), persons, activity_lists(), st.data())
def test_same_input_same_output_whatever_the_activity_order(
        model: Model, person: Person, activities: list[Activity], data: st.DataObject) -> None:
    first = qualify(make_profile(person, activities), model, NOW)
    assert qualify(make_profile(person, activities), model, NOW) == first
    shuffled = data.draw(st.permutations(activities))
    assert qualify(make_profile(person, shuffled), model, NOW) == first


@common
@given(st.sampled_from(MODELS), persons, activity_lists(), st.sampled_from(list(ActivityType)),
       ages, attributes)
def test_a_positive_activity_never_lowers_the_score(
        model: Model, person: Person, activities: list[Activity], kind: ActivityType,
        age: float, attrs: dict[str, str]) -> None:
    """Also with window caps, max_count, max_points, stepwise decay and inactivity rules (a
    new engagement can only end a period of inactivity)."""
    assume(only_positive(model, kind))
    before = qualify(make_profile(person, activities), model, NOW)
    extra = Activity("hubspot", "extra", "1", kind, NOW - timedelta(seconds=age), attrs)
    after = qualify(make_profile(person, [*activities, extra]), model, NOW)
    assert after.engagement_points >= before.engagement_points - 1e-9
    assert after.score >= before.score
    # Qualified stays qualified (LEAD and SUBSCRIBER are both "not yet": a first newsletter
    # sign-up makes a LEAD without activity a SUBSCRIBER).
    assert qualified(after.stage) or not qualified(before.stage)
    assert (after.stage is Stage.DISQUALIFIED) == (before.stage is Stage.DISQUALIFIED)


@common
@given(st.sampled_from(MODELS), persons, activity_lists(min_age_days=0.0),
       st.floats(0, 120 * DAY, allow_nan=False))
def test_time_passing_never_raises_the_score(
        model: Model, person: Person, activities: list[Activity], later: float) -> None:
    """Without new activities the score can only fall as `now` moves on (decay, fixed
    windows, inactivity). Exception by design: a negative activity leaving the lookback
    window stops counting, so those cases are excluded."""
    lookback = model.plan.lookback_seconds
    then = NOW + timedelta(seconds=later)
    for activity in activities:
        if not only_positive(model, activity.type):
            age_now = (NOW - activity.occurred_at).total_seconds()
            assume(age_now > lookback or age_now + later <= lookback)
    profile = make_profile(person, activities)
    before, after = qualify(profile, model, NOW), qualify(profile, model, then)
    assert after.engagement_points <= before.engagement_points + 1e-9
    assert after.score <= before.score
    assert after.fit_points == before.fit_points


@common
@given(st.sampled_from(MODELS), persons, activity_lists(), st.sampled_from(list(Stage)))
def test_stage_never_regresses_without_a_recycle_rule_and_sales_stages_are_kept(
        model: Model, person: Person, activities: list[Activity], current: Stage) -> None:
    decision = qualify(make_profile(person, activities, current), model, NOW)
    lifecycle = [r for r in decision.reasons if r.rule_id.startswith("lifecycle.")]
    if current in SALES_OWNED_STAGES:
        assert decision.stage is current
        assert decision.reasons[-1].rule_id in ("lifecycle.sales_owned", "stage.sql")
        return
    recycled = [r for r in lifecycle if r.rule_id.startswith("lifecycle.recycle.")]
    disqualified = [r for r in lifecycle if r.rule_id.startswith("lifecycle.disqualify.")]
    if decision.stage is Stage.DISQUALIFIED:
        # An exit, not a step back: only a disqualify rule (or keeping it) puts one there.
        assert disqualified or current is Stage.DISQUALIFIED
    elif decision.stage.rank < current.rank:
        assert recycled, decision.reasons
        rules = {m.rule_id: m for m in model.plan.recycle}
        assert rules[recycled[-1].rule_id].target is decision.stage
    else:
        assert not disqualified
    for reason in recycled:
        assert reason.detail.split(":")[0].split(" -> ")[1] in ("RECYCLED", "LEAD",
                                                                 "SUBSCRIBER")


@common
@given(st.sampled_from(MODELS), persons, activity_lists(), st.integers(1, 300),
       st.sampled_from([None, *Stage]))
def test_every_point_is_accounted_for(model: Model, person: Person,
                                      activities: list[Activity], limit: int,
                                      current: Stage | None) -> None:
    decision = qualify(make_profile(person, activities, current), model, NOW)
    fit = math.fsum(r.points for r in decision.reasons if r.rule_id.startswith("fit."))
    engagement = math.fsum(r.points for r in decision.reasons
                           if r.rule_id.startswith("engagement."))
    assert fit == decision.fit_points
    assert engagement == decision.engagement_points
    assert math.isclose(math.fsum(r.points for r in decision.reasons),
                        decision.fit_points + decision.engagement_points, abs_tol=1e-9)
    assert decision.score == round(decision.fit_points + decision.engagement_points)
    assert all(r.points == 0 for r in decision.reasons
               if not r.rule_id.startswith(("fit.", "engagement.")))
    assert sum(r.rule_id.startswith("stage.") for r in decision.reasons) == 1
    # Reasons come in order: fit, engagement, the one stage reason, lifecycle reasons.
    kinds = [r.rule_id.split(".")[0] for r in decision.reasons]
    assert kinds == sorted(kinds, key=["fit", "engagement", "stage", "lifecycle"].index)
    # Every engagement reason for activities cites its latest activity and its date.
    for reason in decision.reasons:
        if reason.rule_id.startswith("engagement.") and reason.evidence_at is not None:
            assert reason.evidence_at.date().isoformat() in reason.detail
    assert len(summarize(decision, limit)) <= limit


@common
@given(st.sampled_from(MODELS), persons, activity_lists(), st.integers(0, 10_000),
       st.lists(st.sampled_from(("a@x.test", "b@x.test", "dana.whitfield@syncer-sandbox.test",
                                 "olga.petrova@syncer-sandbox.test")), unique=True))
def test_routing_only_picks_available_model_reps(
        model: Model, person: Person, activities: list[Activity], position: int,
        available: list[str]) -> None:
    profile = make_profile(person, activities)
    decision = qualify(profile, model, NOW)
    routed, next_position = route(decision, profile, model, available, position)
    assert route(decision, profile, model, available, position) == (routed, next_position)
    if routed.owner_email is None:
        assert next_position == position
    else:
        # Unavailable reps are skipped: the position moves past them, within one cycle.
        cycle = sum(rep.weight for rep in model.routing.reps)
        assert position + 1 <= next_position <= position + cycle
        assert routed.owner_email in available
        assert routed.owner_email in {rep.email for rep in model.routing.reps}
        assert decision.stage.rank >= model.plan.assign_at.rank


# ---------------------------------------------------------------- score cards and ledgers

#: Fit rules a random model picks from (ids are unique by construction).
FIT_RULES = (
    {"id": "senior", "field": "title", "regex": r"\b(vp|director|ceo)\b", "points": 25},
    {"id": "manager", "field": "title", "contains": "manager", "points": 7.5,
     "group": "seniority"},
    {"id": "head", "field": "title", "contains": "head", "points": 12, "group": "seniority"},
    {"id": "size", "field": "employees", "min": 100, "points": 15.25},
    {"id": "software", "field": "industry", "in": ["Software", "Healthcare"], "points": 10},
    {"id": "free", "field": "email", "email_domain_in": ["gmail.com"], "points": -12.5},
    {"id": "no_company", "field": "company", "missing": True, "points": -3.3},
)
POINTS = st.sampled_from([0.3, 0.7, 1, 2.5, 3, 9, 12, 40, -0.5, -4, -15, -25])


@st.composite
def engagement_rules(draw: st.DrawFn, prefix: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 6))):
        rule: dict[str, Any] = {"id": f"{prefix}{n}",
                                "activity": draw(st.sampled_from(RULE_TYPES)).value,
                                "points": draw(POINTS)}
        if draw(st.booleans()):
            rule["where"] = {"url": draw(st.sampled_from(("/product", "/pricing", "w.test")))}
        limit = draw(st.sampled_from(("none", "count", "points", "window", "window+points")))
        if limit == "count":
            rule["max_count"] = draw(st.integers(1, 3))
        if "points" in limit:
            rule["max_points"] = draw(st.sampled_from([0.5, 3, 4.4, 10, 30]))
        if "window" in limit:
            rule["max_points_per"] = {"days": draw(st.sampled_from([1, 3.5, 7, 30])),
                                      "points": draw(st.sampled_from([0.5, 2, 6.6, 15]))}
        rules.append(rule)
    if draw(st.booleans()):
        rules.append({"id": f"{prefix}quiet", "inactive_days": draw(st.sampled_from([3, 30])),
                      "points": draw(st.sampled_from([-2, -7.5]))})
    return rules


DECAYS: tuple[dict[str, Any], ...] = (
    {}, {"half_life_days": 9}, {"half_life_days": 45},
    {"decay_steps": [{"max_age_days": 3, "factor": 1}, {"max_age_days": 20, "factor": 0.7},
                     {"max_age_days": 90, "factor": 0.15}]})
#: Activity types the random rules score (few, so that rules and activities meet often).
RULE_TYPES = (ActivityType.PAGE_VIEW, ActivityType.PRICING_PAGE_VIEW, ActivityType.EMAIL_CLICK,
              ActivityType.FORM_FILL, ActivityType.UNSUBSCRIBE)


@st.composite
def rule_activities(draw: st.DrawFn) -> list[Activity]:
    """Activities mostly of the types the random rules score, some of others."""
    kinds = st.sampled_from(RULE_TYPES) | st.sampled_from(list(ActivityType))
    specs = draw(st.lists(st.tuples(kinds, ages, attributes), max_size=24))
    return [Activity("hubspot", f"a{n}", "1", kind, NOW - timedelta(seconds=age), attrs)
            for n, (kind, age, attrs) in enumerate(specs)]


@st.composite
def random_models(draw: st.DrawFn) -> Model:
    """A model with random fit and engagement rules, decay and caps, and up to three named
    scores that inherit some sections and bring their own others."""
    fit = draw(st.lists(st.sampled_from(FIT_RULES), unique_by=lambda r: r["id"]))
    engagement = {**draw(st.sampled_from(DECAYS)),
                  "lookback_days": draw(st.sampled_from([40, 180])),
                  "engaged_activities": ["page_view", "form_fill", "email_click"],
                  "rules": draw(engagement_rules("r"))}
    scores: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 3))):
        score: dict[str, Any] = {"name": f"line{n}"}
        own = draw(st.sampled_from(("fit", "engagement", "both")))
        if own in ("fit", "both"):
            score["fit"] = {"rules": draw(st.lists(st.sampled_from(FIT_RULES),
                                                   unique_by=lambda r: r["id"]))}
            if draw(st.booleans()):
                score["fit"]["grades"] = [{"grade": "X", "min": 15}, {"grade": "Y", "min": 0}]
        if own in ("engagement", "both"):
            score["engagement"] = {**draw(st.sampled_from(DECAYS)),
                                   "rules": draw(engagement_rules(f"s{n}_"))}
            if draw(st.booleans()):
                score["engagement"]["lookback_days"] = draw(st.sampled_from([25, 300]))
        scores.append(score)
    return parse_model({
        "name": "random", "fit": {"rules": fit, "grades": [
            {"grade": "A", "min": 30}, {"grade": "B", "min": 10}, {"grade": "C", "min": -100}]},
        "engagement": engagement, "qualification": {"mql_score": 25}, "routing": REPS,
        "scores": scores})


def as_primary(model: Model, index: int) -> Model:
    """The model with named score `index`'s sections (as it runs them) at the top level."""
    named, fit, engagement = model.score_sections[index]
    data = model.model_dump(by_alias=True, exclude_none=True)
    data["scores"] = []
    data["primary_score"] = named.name
    if fit is not None:
        data["fit"] = fit.model_dump(by_alias=True, exclude_none=True)
    if engagement is not None:
        data["engagement"] = engagement.model_dump(by_alias=True, exclude_none=True)
    return parse_model(data)


@settings(max_examples=200, deadline=None)
@given(random_models(), persons, rule_activities(), st.sampled_from([None, *Stage]))
def test_every_score_is_the_sum_of_its_ledger(model: Model, person: Person,
                                               activities: list[Activity],
                                               current: Stage | None) -> None:
    """Exact to 1e-9: the points are floats (12 x 0.7...), summed with math.fsum. The
    primary card is the decision's score; each line of an activity is the rule's points
    times its decay factor; a named score is what it would be as a model's primary score."""
    decision = qualify(make_profile(person, activities, current), model, NOW)
    assert [card.name for card in decision.scores] == [
        model.primary_score, *(named.name for named in model.scores)]
    primary = decision.scores[0]
    assert (primary.total, primary.fit, primary.engagement, primary.grade) == (
        decision.score, decision.fit_points, decision.engagement_points, decision.fit_grade)
    by_id = {f"{a.source}:{a.source_id}": a for a in activities}
    for index, card in enumerate(decision.scores):
        assert card.total == round(card.fit + card.engagement)
        assert abs(math.fsum(e.points for e in card.ledger) - card.total) <= 1e-9
        rounding = [e for e in card.ledger if e.rule_id == "rounding"]
        assert rounding in ([], list(card.ledger[-1:]))
        assert all(abs(e.points) <= 0.5 + 1e-9 for e in rounding)
        assert math.fsum(e.points for e in card.ledger if e.rule_id.startswith("fit.")) == \
            card.fit
        engagement = [e for e in card.ledger if e.rule_id.startswith("engagement.")]
        assert abs(math.fsum(e.points for e in engagement) - card.engagement) <= 1e-9
        section = (model.score_sections[index - 1][2] if index else None) or model.engagement
        points = {f"engagement.{r.id}": r.points for r in section.rules}
        for entry in engagement:
            if entry.detail.startswith("cap: "):
                assert entry.activity_id is None
                assert entry.points * points[entry.rule_id] <= 0  # a cap only takes away
            elif entry.activity_id is not None and not entry.detail.startswith("no engagem"):
                activity = by_id[entry.activity_id]
                assert entry.at == activity.occurred_at <= NOW
                assert 0 < entry.decay <= 1
                assert entry.points == points[entry.rule_id] * entry.decay
        counted = [(e.rule_id, e.activity_id) for e in engagement
                   if e.activity_id is not None and not e.detail.startswith("no engagem")]
        assert len(counted) == len(set(counted))
        if index:
            alone = qualify(make_profile(person, activities, current),
                            as_primary(model, index - 1), NOW).scores[0]
            assert alone == card
    # The primary's lines reconcile rule by rule with its reasons.
    for reason in decision.reasons:
        if reason.rule_id.startswith(("fit.", "engagement.")):
            lines = [e.points for e in primary.ledger if e.rule_id == reason.rule_id]
            assert abs(math.fsum(lines) - reason.points) <= 1e-9
