"""The account core (issue 20 item 3): account fit, engagement rolled up from people with
a cap per person, MQA, buying roles from titles, and matching CRM accounts into companies.
Pure: no server, no database."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.domain.accounts import Account
from syncer.domain.types import Person
from syncer.qualify import Model, ModelError, load_model, parse_model
from syncer.qualify.account_match import index_accounts
from syncer.qualify.accounts import (
    AccountMember,
    account_summary,
    buying_role,
    decide_account,
)

ROLES = {"decision_maker": ["vp", "chief", "head of", "director", "cto"],
         "champion": ["manager", "lead"], "user": ["engineer", "analyst"]}


def model(**accounts: Any) -> Model:
    section: dict[str, Any] = {
        "fit": {"rules": [
            {"id": "software", "field": "industry", "in": ["Software"], "points": 10},
            {"id": "size", "field": "employees", "min": 200, "points": 10},
            {"id": "revenue", "field": "annual_revenue", "min": 1_000_000, "points": 5}],
            "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": 10},
                       {"grade": "C", "min": -1000}]},
        "engagement": {"per_person_cap": 30, "engaged_person_min": 10},
        "mqa": {"min_engaged_people": 3, "min_score": 40},
        "buying_roles": ROLES,
    }
    for key, value in accounts.items():
        section[key] = value if key == "buying_roles" else {**section[key], **value}
    return parse_model({
        "name": "accounts",
        "fit": {"rules": [], "grades": [{"grade": "A", "min": -1000}]},
        "qualification": {"mql_score": 30},
        "accounts": section,
    })


ACME = (Account("hubspot", "c1", name="Acme", domain="acme.com", industry="Software",
                employees=500, annual_revenue=2e6),)


def member(name: str, engagement: float, role: str | None = None) -> AccountMember:
    return AccountMember(f"{name}@acme.com", engagement, role)


def details(reasons: Any) -> list[str]:
    return [r.detail for r in reasons]


def test_mqa_fires_at_the_third_engaged_person_not_the_second() -> None:
    m = model()
    people = [member("ana", 15), member("ben", 12), member("kim", 3)]
    two = decide_account("domain:acme.com", ACME, people, m)
    assert (two.is_mqa, two.engaged_people) == (False, 2)
    assert "not MQA: 2 engaged of 3 needed" in details(two.reasons)
    three = decide_account("domain:acme.com", ACME, [*people, member("cy", 20)], m)
    assert (three.is_mqa, three.engaged_people) == (True, 3)
    assert "3 engaged people (ana@acme.com, ben@acme.com, cy@acme.com)" in \
        details(three.reasons)
    assert three.fit == 25 and three.engagement == 50 and three.score == 75
    assert three.grade == "A"
    assert "fit: industry 'Software' is listed +10" in details(three.reasons)
    # the reasons' points add up to the score, as a person's do
    assert sum(r.points for r in three.reasons) == three.fit + three.engagement
    summary = account_summary(three, 255)
    assert summary.startswith("MQA 75 (grade A): MQA: 3 engaged people >= 3")
    assert len(account_summary(three, 40)) <= 40


def test_one_hyperactive_person_cannot_make_an_account_mqa() -> None:
    # even when one engaged person would do: the cap keeps the score below the bar
    m = model(mqa={"min_engaged_people": 1, "min_score": 60})
    hyper = [member("hyper", 500), member("quiet", 1)]
    decision = decide_account("domain:acme.com", ACME, hyper, m)
    assert decision.engagement == 31 and decision.score == 56
    assert not decision.is_mqa
    assert "engagement capped at 30 for hyper@acme.com (had 500)" in details(decision.reasons)
    assert "not MQA: score 56 below 60" in details(decision.reasons)
    # and with the default bar (three engaged people) a single person never counts thrice
    assert not decide_account("domain:acme.com", ACME, hyper, model()).is_mqa
    # negative engagement (a bounce) does not pull the company down
    assert decide_account("domain:acme.com", ACME, [member("gone", -40)], m).engagement == 0


@pytest.mark.parametrize(("title", "role"), [
    ("VP Marketing", "decision_maker"), ("Chief Revenue Officer", "decision_maker"),
    ("Head of Growth", "decision_maker"), ("CTO", "decision_maker"),
    ("Director of IT", "decision_maker"), ("Marketing Manager", "champion"),
    ("Team Lead, Data", "champion"), ("Software Engineer", "user"),
    ("Data Analyst", "user"), ("Intern", None), (None, None), ("", None),
])
def test_buying_roles_come_from_titles(title: str | None, role: str | None) -> None:
    plan = model().account_plan
    assert plan is not None
    assert buying_role(title, plan) == role


def test_whole_words_and_regex_patterns() -> None:
    plan = model(buying_roles={"exec": ["cto"], "ops": ["/ops\\b/"]}).account_plan
    assert plan is not None
    assert buying_role("Director", plan) is None  # "cto" is not a word of it
    assert buying_role("RevOps Lead", plan) == "ops"


def test_required_role_must_be_among_the_engaged() -> None:
    m = model(mqa={"require_roles": ["decision_maker"]})
    users = [member("a", 20, "user"), member("b", 20, "champion"), member("c", 20, "user")]
    without = decide_account("domain:acme.com", ACME, users, m)
    assert not without.is_mqa
    assert "not MQA: no engaged decision_maker" in details(without.reasons)
    quiet_boss = [*users[:2], member("boss", 2, "decision_maker")]
    assert not decide_account("domain:acme.com", ACME, quiet_boss, m).is_mqa
    boss = [*users, member("boss", 15, "decision_maker")]
    assert decide_account("domain:acme.com", ACME, boss, m).is_mqa


def test_any_order_of_people_gives_the_same_decision() -> None:
    m = model()
    people = [member("ana", 15, "user"), member("ben", 80, "champion"),
              member("cy", 9), member("dee", 10, "decision_maker")]
    decisions = {decide_account("domain:acme.com", ACME, list(order), m)
                 for order in itertools.permutations(people)}
    assert len(decisions) == 1


def test_account_fit_reads_properties_and_first_non_empty_record() -> None:
    m = model(fit={"rules": [{"id": "tier", "field": "tier", "equals": "gold", "points": 7},
                             {"id": "country", "field": "country", "in": ["Germany"],
                              "points": 3}]})
    records = (Account("hubspot", "c1", domain="x.com", country=None,
                       properties={"tier": "Gold"}),
               Account("salesforce", "001", domain="x.com", country="Germany"))
    decision = decide_account("domain:x.com", records, [], m)
    assert decision.fit == 10


def problems_of(tmp_path: Path, accounts: dict[str, Any]) -> str:
    data = {"name": "bad", "fit": {"grades": [{"grade": "A", "min": 0}]},
            "qualification": {"mql_score": 30}, "accounts": accounts}
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ModelError) as error:
        load_model(path)
    return str(error.value)


GOOD: dict[str, Any] = {"fit": {"grades": [{"grade": "A", "min": 0}]},
                        "engagement": {"per_person_cap": 30, "engaged_person_min": 10},
                        "mqa": {"min_engaged_people": 3}}


@pytest.mark.parametrize(("change", "expected"), [
    ({"fit": {"rules": [{"id": "t", "field": "title", "contains": ["vp"], "points": 5}],
              "grades": [{"grade": "A", "min": 0}]}},
     ["accounts.fit.rules[0].field", "'title' is a person field", "Fix:"]),
    ({"mqa": {"min_engaged_people": 3, "require_roles": ["boss"]}},
     ["accounts", "require_roles names boss", "Fix: add the role"]),
    ({"buying_roles": {"decision_maker": "vp"}},
     ["accounts.buying_roles", "give a list of title patterns", "Fix: wrap it in [ ]"]),
    ({"engagement": {"per_person_cap": 0, "engaged_person_min": 10}},
     ["accounts.engagement.per_person_cap"]),
    ({"mqa": {"min_engaged_people": 0}}, ["accounts.mqa.min_engaged_people"]),
    ({"fit": {"grades": [{"grade": "B", "min": 0}, {"grade": "A", "min": 10}]}},
     ["accounts.fit", "strictly falling", "Fix: reorder"]),
    ({"mqa": {"min_engaged_people": 3, "typo": 1}}, ["accounts.mqa.typo"]),
])
def test_model_errors_name_the_field_line_and_fix(tmp_path: Path, change: dict[str, Any],
                                                  expected: list[str]) -> None:
    message = problems_of(tmp_path, {**GOOD, **change})
    assert "line " in message
    for text in expected:
        assert text in message


def test_a_model_without_accounts_keeps_its_version() -> None:
    base = parse_model({"name": "plain", "fit": {"grades": [{"grade": "A", "min": 0}]},
                        "qualification": {"mql_score": 30}})
    assert base.account_plan is None and base.accounts is None
    assert base.version == parse_model({"name": "plain",
                                        "fit": {"grades": [{"grade": "A", "min": 0}]},
                                        "qualification": {"mql_score": 30}}).version
    with pytest.raises(ValueError, match="no `accounts:` section"):
        decide_account("domain:acme.com", ACME, [], base)


# ---------------------------------------------------------------- matching

KINDS = {"hubspot": "hubspot", "salesforce": "salesforce"}


def test_accounts_of_two_crms_are_one_company_by_domain_then_by_linked_id() -> None:
    accounts = [
        Account("hubspot", "h1", name="Acme", domain="acme.com"),
        Account("salesforce", "001A", name="Acme Inc", domain="www.Acme.com/about"),
        Account("hubspot", "h2", name="Nodomain", linked_ids={"salesforce": "001B"}),
        Account("salesforce", "001B", name="Nodomain Ltd"),
        Account("salesforce", "001C", name="Alone"),
    ]
    for order in itertools.permutations(accounts):
        index = index_accounts(order, KINDS, ["hubspot", "salesforce"])
        assert index.key_of == {("hubspot", "h1"): "domain:acme.com",
                                ("salesforce", "001A"): "domain:acme.com",
                                ("hubspot", "h2"): "id:hubspot:h2",
                                ("salesforce", "001B"): "id:hubspot:h2",
                                ("salesforce", "001C"): "id:salesforce:001C"}
        assert [a.record_id for a in index.groups["domain:acme.com"]] == ["h1", "001A"]


def test_a_persons_account_by_link_else_email_domain_never_free_mail() -> None:
    index = index_accounts([Account("hubspot", "h1", domain="acme.com"),
                            Account("salesforce", "001", domain="globex.com"),
                            Account("hubspot", "h9", domain="gmail.com")], KINDS)
    contact = Person("salesforce", "003", "Contact", "ana@elsewhere.io", account_id="001")
    lead = Person("salesforce", "00Q", "Lead", "ben@acme.com")
    free = Person("hubspot", "7", "contact", "cy@gmail.com")
    stranger = Person("hubspot", "8", "contact", "dee@unknown.com", account_id="nope")
    assert index.person_account([contact]) == "domain:globex.com"
    assert index.person_account([lead]) == "domain:acme.com"
    assert index.person_account([free]) is None
    assert index.person_account([stranger]) is None
