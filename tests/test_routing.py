"""Routing rules in isolation: order of evaluation, territories, rotation, caps, absences."""

from __future__ import annotations

import collections
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from syncer.domain.types import Decision, Person, Profile, Stage
from syncer.ops.report import format_report, owner_funnel, percentile, speed_to_lead
from syncer.qualify.routing import RoutingState, assign_owner, company_key
from syncer.qualify.routing_model import Routing

TODAY = date(2026, 11, 20)
EMEA = ["keiko@x.test", "ingrid@x.test"]
GLOBAL = ["dana@x.test", "marco@x.test", "samuel@x.test"]
EVERYONE = frozenset([*EMEA, *GLOBAL, "fallback@x.test"])


def routing(**overrides: Any) -> Routing:
    spec: dict[str, Any] = {
        "regions": {"EMEA": ["United Kingdom", "Germany", "France"]},
        "territories": [
            {"id": "emea-enterprise", "match": {"region": ["EMEA"], "employees": {"min": 1000}},
             "rep": "ingrid@x.test"},
            {"id": "emea", "match": {"region": ["EMEA"]}, "team": "emea"},
        ],
        "teams": [
            {"name": "emea", "reps": [{"email": e} for e in EMEA]},
            {"name": "global", "reps": [{"email": "dana@x.test", "weight": 2},
                                        {"email": "marco@x.test"}, {"email": "samuel@x.test"}]},
        ],
        "default_team": "global",
        "fallback_owner": "fallback@x.test",
    }
    spec.update(overrides)
    return Routing.model_validate(spec)


def profile(email: str = "kim@acme.example", country: str = "United States",
            employees: int | None = 200, company: str = "Acme Labs",
            owner: str | None = None) -> Profile:
    person = Person("hubspot", "1", "contact", email, company=company, country=country,
                    employees=employees)
    return Profile(email, (person,), (), None, owner)


def decision(stage: Stage = Stage.MQL, owner: str | None = None,
             key: str = "kim@acme.example") -> Decision:
    return Decision(key, 50, 30.0, 20.0, "B", stage, owner, (), "test@1")


def state(**overrides: Any) -> RoutingState:
    values: dict[str, Any] = {"available": EVERYONE}
    values.update(overrides)
    return RoutingState(**values)


def test_account_match_beats_territory_and_rotation() -> None:
    result = assign_owner(decision(), profile(country="Germany"), routing(),
                          state(account_owners={"domain:acme.example": "samuel@x.test"}), TODAY)
    assert result.rule == "account_match" and result.decision.owner_email == "samuel@x.test"
    assert result.decision.reasons[-1].detail == \
        "account match (domain acme.example): samuel@x.test"
    by_company = assign_owner(decision(), profile(email="kim@gmail.com", company="ACME Labs, Inc."),
                              routing(), state(account_owners={"company:acme labs": "dana@x.test",
                                                               "domain:gmail.com": "marco@x.test"}),
                              TODAY)
    assert by_company.decision.owner_email == "dana@x.test"  # gmail.com is never an account


def test_territory_beats_rotation_and_first_match_wins() -> None:
    enterprise = assign_owner(decision(), profile(country="France", employees=5000), routing(),
                              state(), TODAY)
    assert (enterprise.rule, enterprise.decision.owner_email) == \
        ("territory:emea-enterprise", "ingrid@x.test")
    mid = assign_owner(decision(), profile(country="Germany"), routing(), state(), TODAY)
    assert mid.rule == "round_robin" and mid.team == "emea"
    assert mid.decision.owner_email == "keiko@x.test"
    assert mid.decision.reasons[-1].detail == "territory emea, round robin 1/2: keiko@x.test"
    elsewhere = assign_owner(decision(), profile(country="Brazil"), routing(), state(), TODAY)
    assert elsewhere.team == "global" and elsewhere.decision.owner_email in GLOBAL
    assert elsewhere.decision.reasons[-1].detail.startswith("no territory matched, round robin")


def test_existing_owner_and_unqualified_people_are_not_routed() -> None:
    owned = decision(owner="someone@x.test")
    assert assign_owner(owned, profile(), routing(), state(), TODAY).decision == owned
    lead = decision(Stage.LEAD)
    assert assign_owner(lead, profile(), routing(), state(), TODAY).rule == "not_qualified"
    at_sql = routing(assign_at="sql")
    assert assign_owner(decision(), profile(), at_sql, state(), TODAY).rule == "not_qualified"
    assert assign_owner(decision(Stage.SQL), profile(), at_sql, state(), TODAY).assigned


def test_weighted_rotation_is_fair_and_skips_unavailable() -> None:
    r, positions, counts = routing(), {"global": 0}, collections.Counter[str]()
    for _ in range(1000):
        result = assign_owner(decision(), profile(country="Brazil"), r,
                              state(positions=positions,
                                    available=EVERYONE - {"marco@x.test"}), TODAY)
        positions = {"global": result.new_position or 0}
        counts[result.decision.owner_email or ""] += 1
    assert set(counts) == {"dana@x.test", "samuel@x.test"}
    assert counts["dana@x.test"] == pytest.approx(667, abs=2)


def test_daily_cap_and_out_of_office_overflow_to_fallback() -> None:
    r = routing(teams=[{"name": "emea", "reps": [{"email": "keiko@x.test", "daily_cap": 2},
                                                 {"email": "ingrid@x.test"}]},
                       {"name": "global", "reps": [{"email": "dana@x.test"}]}],
                out_of_office=[{"email": "ingrid@x.test", "start": "2026-11-19",
                                "end": "2026-11-21"}])
    capped = state(assigned_today={"keiko@x.test": 2})
    result = assign_owner(decision(), profile(country="Germany"), r, capped, TODAY)
    assert result.rule == "fallback" and result.decision.owner_email == "fallback@x.test"
    assert "nobody in team emea" in result.decision.reasons[-1].detail
    back = assign_owner(decision(), profile(country="Germany"), r, capped,
                        TODAY + timedelta(days=2))
    assert back.decision.owner_email == "ingrid@x.test"  # back from leave
    under_cap = assign_owner(decision(), profile(country="Germany"), r,
                             state(assigned_today={"keiko@x.test": 1}), TODAY)
    assert under_cap.decision.owner_email == "keiko@x.test"


def test_no_fallback_leaves_unassigned_with_reason() -> None:
    r = routing(fallback_owner=None)
    result = assign_owner(decision(), profile(country="Brazil"), r,
                          state(available=frozenset()), TODAY)
    assert result.rule == "unassigned" and result.decision.owner_email is None
    assert result.decision.reasons[-1].rule_id == "routing.unassigned"


@pytest.mark.parametrize(("change", "message"), [
    ({"territories": [{"id": "x", "match": {"country": ["UK"]}, "team": "nope"}]},
     "names team 'nope', which is not defined"),
    ({"territories": [{"id": "x", "match": {"region": ["APAC"]}, "team": "emea"}]},
     "region 'APAC', which is not defined"),
    ({"territories": [{"id": "x", "match": {}, "team": "emea"}]}, "at least one condition"),
    ({"territories": [{"id": "x", "match": {"country": ["UK"]}, "team": "emea",
                       "rep": "a@x.test"}]}, "exactly one of `team` or `rep`"),
    ({"reps": [{"email": "a@x.test"}]}, "either `reps` (one rotation) or `teams`"),
    ({"default_team": "nope"}, "default_team 'nope' is not a defined team"),
])
def test_bad_routing_is_explained(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        routing(**change)
    assert message in str(raised.value)


def test_company_key_ignores_case_punctuation_and_suffixes() -> None:
    assert company_key("ACME Labs, Inc.") == company_key("acme labs") == "acme labs"
    assert company_key("") is None


def test_speed_to_lead_and_owner_funnel_figures() -> None:
    start = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)

    def row(key: str, owner: str, team: str | None, minutes: int | None,
            stage: str = "mql") -> dict[str, Any]:
        return {"person_key": key, "owner_email": owner, "team": team,
                "rule": "account_match" if team is None else "round_robin", "stage": stage,
                "qualified_at": start,
                "owner_written_at": None if minutes is None else start + timedelta(minutes=minutes)}

    rows = [row("a", "dana", "global", 10), row("b", "dana", "global", 20),
            row("c", "marco", "global", 30), row("d", "marco", "global", 40),
            row("e", "marco", None, 5, stage="sql"), row("f", "dana", "global", None)]
    (account, team) = speed_to_lead(rows)
    assert (team.team, team.people, team.median, team.p90) == \
        ("global", 4, timedelta(minutes=20), timedelta(minutes=40))
    assert (account.team, account.people, account.median) == \
        ("account_match", 1, timedelta(minutes=5))
    funnel = {f.owner: f for f in owner_funnel(rows, {"a": Stage.SQL, "c": Stage.CUSTOMER,
                                                        "d": Stage.MQL})}
    assert (funnel["dana"].assigned, funnel["dana"].mqls, funnel["dana"].mql_to_sql) == \
        (3, 3, pytest.approx(1 / 3))
    assert (funnel["marco"].assigned, funnel["marco"].mqls, funnel["marco"].mql_to_sql) == \
        (3, 2, 0.5)
    text = format_report([account, team], list(funnel.values()))
    assert "global" in text and "20m00s" in text and "50%" in text
    assert percentile([timedelta(seconds=s) for s in range(1, 11)], 0.9) == timedelta(seconds=9)
