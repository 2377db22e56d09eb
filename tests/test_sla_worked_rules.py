"""The SLA's reading of sales activity in isolation (syncer/qualify/sla.py): who logged it
counts, and a rep's own call does not bring a recycled person back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from syncer.domain.types import ACTOR, Activity, ActivityType, Stage
from syncer.qualify.sla import RECYCLE, Mark, review
from tests.test_sla_decision import T0, decision, profile, routed, routing, state

LATE = T0 + timedelta(hours=5)


def call(actor: str | None, kind: ActivityType = ActivityType.CALL,
         hours: float = 1) -> Activity:
    attributes = {ACTOR: actor} if actor else {}
    return Activity("salesforce", f"00T{kind.value}", "00Q1", kind,
                    T0 + timedelta(hours=hours), attributes)


@pytest.mark.parametrize(("activity", "action"), [
    (call("ana@x.test"), "worked"),                         # the owner's call
    (call("ANA@x.test"), "worked"),                         # emails compare without case
    (call(None), "worked"),                                 # who logged it is unknown
    (call("ben@x.test"), "reassign"),                       # a colleague's call
    (call("ana@x.test", ActivityType.SALES_EMAIL), "worked"),
    (call("ana@x.test", ActivityType.OPPORTUNITY_WON), "worked"),
    (call("ana@x.test", ActivityType.NOTE), "reassign"),    # not in the default list
    (call("ana@x.test", hours=-1), "reassign"),             # before the owner got them
])
def test_work_is_an_activity_of_the_worked_types_by_an_owner_of_the_episode(
        activity: Activity, action: str) -> None:
    verdict = review(decision(), profile(activities=(activity,)), routed(), routing(),
                     state(), LATE)
    assert verdict.action == action


def test_a_call_by_an_earlier_owner_of_the_episode_counts() -> None:
    marks = [*routed(), Mark("ben@x.test", "sla_reassign", "sales", T0 + timedelta(hours=4))]
    late_call = call("ana@x.test", hours=4.5)
    verdict = review(decision("ben@x.test"), profile("ben@x.test", (late_call,)), marks,
                     routing(), state(), T0 + timedelta(hours=9))
    assert verdict.action == "worked"


def test_a_reps_call_does_not_requalify_a_recycled_person_a_form_does() -> None:
    late = T0 + timedelta(days=7)
    marks = [*routed(), Mark("ana@x.test", RECYCLE, "sales", late)]
    rep_call = call("ana@x.test", hours=7 * 24 + 2)
    held = review(decision(), profile(activities=(rep_call,)), marks, routing(), state(),
                  late + timedelta(days=1))
    assert held.action == "hold" and held.decision.stage is Stage.RECYCLED
    form = Activity("hubspot", "f1", "1", ActivityType.FORM_FILL, late + timedelta(hours=2))
    back = review(decision(), profile(activities=(rep_call, form)), marks, routing(),
                  state(), late + timedelta(days=1))
    assert back.action == "requalified"
