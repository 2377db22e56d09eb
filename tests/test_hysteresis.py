"""The hysteresis band (`qualification.hysteresis`): a score wobbling around the MQL
threshold must not cycle a person MQL -> RECYCLED -> MQL -> ..., while a real signal, a
hand-raise and disqualification work as before, and the band never keeps anyone qualified.

The runs are simulated as the pipeline makes them: each run's current stage is the stage
the previous run decided."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncer.domain.types import Activity, ActivityType, Decision, Person, Profile, Stage
from syncer.qualify import Model, ModelError, parse_model, qualify, summarize
from tests.test_qualify_properties import EXAMPLE, FULL, activity_lists, make_profile, persons

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
A = ActivityType

#: Fit 28 for a VP; an email click is worth 3 for a week: one click puts the score at 31,
#: just over the threshold of 30, and it sinks back to 28 a week later. Quiet for 14 days,
#: an MQL is recycled.
WOBBLY: dict[str, Any] = {
    "name": "wobbly",
    "fit": {"rules": [{"id": "vp", "field": "title", "contains": "vp", "points": 28}],
            "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": -1000}]},
    "engagement": {"decay_steps": [{"max_age_days": 7, "factor": 1.0}], "rules": [
        {"id": "click", "activity": "email_click", "points": 3},
        {"id": "pricing", "activity": "pricing_page_view", "points": 6},
        {"id": "demo", "activity": "demo_request", "points": 40}]},
    "qualification": {"mql_score": 30},
    "lifecycle": {"recycle": [{"id": "quiet_mql", "from": ["mql"], "inactive_days": 14,
                               "to": "recycled"}],
                  "disqualify": [{"id": "bounced", "activity": "email_bounce"}]},
    "routing": {"reps": [{"email": "dana@x.test"}]},
}


def wobbly(band: float, **qualification: Any) -> Model:
    data = copy.deepcopy(WOBBLY)
    data["qualification"].update({"hysteresis": band, **qualification})
    return parse_model(data)


def click(day: int, kind: ActivityType = A.EMAIL_CLICK) -> Activity:
    return Activity("hubspot", f"{kind.value}-{day}", "1", kind, START + timedelta(days=day),
                    {"email": "Nurture #3"})


def runs(model: Model, activities: list[Activity], days: int,
         first: Stage | None = None) -> list[Decision]:
    """One run a day for `days` days; each run sees the activities up to then (the core
    ignores later ones) and the stage the run before decided."""
    person = Person("hubspot", "1", "contact", "kim@acme.example", title="VP Marketing")
    decisions: list[Decision] = []
    current = first
    for day in range(days):
        profile = Profile("kim@acme.example", (person,), tuple(activities), current)
        decision = qualify(profile, model, START + timedelta(days=day, hours=12))
        decisions.append(decision)
        current = decision.stage
    return decisions


def transitions(decisions: list[Decision]) -> list[tuple[Stage, Stage]]:
    stages = [d.stage for d in decisions]
    return [(a, b) for a, b in itertools.pairwise(stages) if a != b]


#: A click every 20 days: each one tips the score over the threshold for a week.
WOBBLE = [click(day) for day in range(0, 120, 20)]


def test_a_score_wobbling_at_the_threshold_flaps_without_the_band() -> None:
    decisions = runs(wobbly(0), WOBBLE, 120)
    assert [d.score for d in decisions[:21]] == [31] * 7 + [28] * 13 + [31]
    flips = transitions(decisions)
    assert decisions[0].stage is Stage.MQL and flips[0] == (Stage.MQL, Stage.RECYCLED)
    assert flips.count((Stage.RECYCLED, Stage.MQL)) == 5  # back in sales' queue 5 times
    assert flips.count((Stage.MQL, Stage.RECYCLED)) == 6
    assert not any(r.rule_id == "lifecycle.hysteresis" for d in decisions for r in d.reasons)


def test_the_band_holds_the_recycled_stage_against_the_wobble() -> None:
    decisions = runs(wobbly(5), WOBBLE, 120)
    assert [d.score for d in decisions] == [d.score for d in runs(wobbly(0), WOBBLE, 120)]
    assert [d.stage for d in decisions[:15]] == [Stage.MQL] * 14 + [Stage.RECYCLED]
    assert transitions(decisions) == [(Stage.MQL, Stage.RECYCLED)]
    held = [d for d in decisions if d.score == 31 and d.stage is Stage.RECYCLED]
    assert len(held) == 5 * 7  # every day a click kept the score at 31 after the recycle
    for decision in held:
        reason = next(r for r in decision.reasons if r.rule_id == "lifecycle.hysteresis")
        assert reason.detail == (
            "not MQL again: score 31 below 35 (mql_score 30 + band 5); a recycled person "
            "qualifies again only with the hysteresis band to spare")
        assert reason.points == 0.0
        assert summarize(decision, 255).startswith(f"RECYCLED 31 (fit A): {reason.detail}")
    # On the days the score is below the threshold anyway, the band has nothing to say.
    quiet = [d for d in decisions if d.score == 28]
    assert quiet and all(r.rule_id != "lifecycle.hysteresis" for d in quiet for r in d.reasons)


def test_a_real_signal_still_requalifies_and_a_hand_raise_still_makes_sql() -> None:
    model = wobbly(5)
    strong = [click(0), click(40), click(41, A.PRICING_PAGE_VIEW)]  # 28 + 3 + 6 = 37 >= 35
    decisions = runs(model, strong, 45)
    assert [d.stage for d in decisions][14:42] == [Stage.RECYCLED] * 27 + [Stage.MQL]
    assert decisions[41].score == 37
    assert not any(r.rule_id == "lifecycle.hysteresis" for r in decisions[41].reasons)
    raised = runs(model, [click(0), click(30, A.DEMO_REQUEST)], 31)
    assert raised[29].stage is Stage.RECYCLED and raised[30].stage is Stage.SQL


def test_the_band_also_raises_min_engagement_but_not_min_fit() -> None:
    model = wobbly(5, min_engagement=2, min_fit=28)
    decisions = runs(model, [click(0), click(30), click(31, A.PRICING_PAGE_VIEW)], 32)
    assert decisions[30].stage is Stage.RECYCLED  # score 31, engagement 3 < 2 + 5
    reason = next(r for r in decisions[30].reasons if r.rule_id == "lifecycle.hysteresis")
    assert reason.detail.startswith("not MQL again: score 31 below 35 (mql_score 30 + band "
                                    "5), engagement 3 below 7 (min_engagement 2 + band 5);")
    assert decisions[31].stage is Stage.MQL  # score 37, engagement 9; fit 28 >= 28 as before


def test_the_band_never_keeps_a_disqualified_person_qualified() -> None:
    bounced = [click(0), click(20), click(20, A.EMAIL_BOUNCE)]
    for band in (0, 5, 50):
        decisions = runs(wobbly(band), bounced, 25)
        assert {d.stage for d in decisions[20:]} == {Stage.DISQUALIFIED}
    # ...nor does it hold a DISQUALIFIED person, whatever the score.
    held = runs(wobbly(5), [click(0)], 3, first=Stage.DISQUALIFIED)
    assert {d.stage for d in held} == {Stage.DISQUALIFIED}


def test_matrix_mode_reads_the_engagement_band_with_the_band_taken_off() -> None:
    data = copy.deepcopy(WOBBLY)
    data["engagement"]["bands"] = [{"band": "1", "min": 3}, {"band": "2", "min": -1000}]
    data["qualification"] = {"mode": "matrix", "matrix": ["A1"], "hysteresis": 2}
    decisions = runs(parse_model(data), WOBBLE[:3], 45)
    assert decisions[20].stage is Stage.RECYCLED
    reason = next(r for r in decisions[20].reasons if r.rule_id == "lifecycle.hysteresis")
    assert reason.detail.startswith("not MQL again: fit A x engagement 2 (engagement 3 - "
                                    "band 2) is not in the matrix (A1)")


def test_the_band_must_not_be_negative() -> None:
    data = copy.deepcopy(WOBBLY)
    data["qualification"]["hysteresis"] = -5
    with pytest.raises(ModelError) as info:
        parse_model(data)
    (problem,) = info.value.problems
    assert problem.startswith("qualification.hysteresis: must be >= 0.0, got -5. Fix: use "
                              "a number >= 0.0")


def without_band(model: Model) -> Model:
    data = model.model_dump(by_alias=True, exclude_none=True)
    data["qualification"]["hysteresis"] = 0
    return parse_model(data)


def with_band(model: Model, band: float) -> Model:
    data = model.model_dump(by_alias=True, exclude_none=True)
    data["qualification"]["hysteresis"] = band
    return parse_model(data)


BANDED = ((EXAMPLE, without_band(EXAMPLE)), (with_band(FULL, 4), FULL))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(BANDED), persons, activity_lists(), st.sampled_from([None, *Stage]),
       st.integers(0, 400))
def test_the_band_only_ever_holds_a_recycled_person_below_mql(
        pair: tuple[Model, Model], person: Person, activities: list[Activity],
        current: Stage | None, hours: int) -> None:
    banded, plain = pair
    assert banded.qualification.hysteresis > 0 and plain.qualification.hysteresis == 0
    profile = make_profile(person, activities, current)
    now = datetime(2026, 10, 5, 12, 0, tzinfo=UTC) + timedelta(hours=hours)
    held, free = qualify(profile, banded, now), qualify(profile, plain, now)
    assert (held.score, held.fit_grade, held.scores[0]) == (
        free.score, free.fit_grade, free.scores[0])
    if held.stage is free.stage:
        assert held.reasons == free.reasons or any(
            r.rule_id == "lifecycle.hysteresis" for r in held.reasons)
        return
    # The only difference the band makes: a recycled person stays below MQL.
    assert current is Stage.RECYCLED and free.stage is Stage.MQL
    assert held.stage is Stage.RECYCLED or held.stage.rank < Stage.RECYCLED.rank
    assert held.stage is not Stage.DISQUALIFIED
    assert any(r.rule_id == "lifecycle.hysteresis" for r in held.reasons)
