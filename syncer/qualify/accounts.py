"""Scoring a company: account fit, engagement rolled up from its people, MQA, buying roles.

Pure, like the person core: the decision is a function of the company's records, its
people's engagement (from their own decisions) and the model's `accounts:` section
(account_schema.py). People are taken in person-key order whatever order they come in, so
the same company always gets the same decision and the same reasons.

Why a cap per person: an account's engagement is meant to show a buying group waking up;
without the cap one person reading every page would make a company look engaged. Why MQA
needs both a count of engaged people and a score: three interns opening an email are
three engaged people of a company that does not fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from syncer.domain.accounts import Account, AccountDecision
from syncer.domain.types import Reason
from syncer.qualify.account_schema import ACCOUNT_FIELDS, Accounts
from syncer.qualify.plan import FitMatcher, fit_matcher
from syncer.qualify.scoring import fit_by, grade_of

#: How many people a Reason names before it says "and N more".
NAMED_PEOPLE = 5
TitleTest = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class AccountMember:
    """One person of a company as the account core sees them: their key (email), their
    engagement points (their Decision's, primary score) and their buying role."""

    key: str
    engagement: float
    role: str | None = None


@dataclass(frozen=True, slots=True)
class AccountPlan:
    """The `accounts:` section compiled once per model (Model.account_plan)."""

    fit: tuple[FitMatcher, ...]
    fit_fields: tuple[str, ...]
    grades: tuple[tuple[str, float], ...]
    cap: float
    engaged_min: float
    min_people: int
    min_score: float
    require_roles: tuple[str, ...]
    roles: tuple[tuple[str, tuple[TitleTest, ...]], ...]


def compile_accounts(section: Accounts) -> AccountPlan:
    """Matchers for the account fit rules and title tests for the buying roles."""
    return AccountPlan(
        fit=tuple(fit_matcher(rule, "accounts.fit") for rule in section.fit.rules),
        fit_fields=tuple(dict.fromkeys(rule.field for rule in section.fit.rules)),
        grades=tuple((b.grade, b.min) for b in section.fit.grades),
        cap=section.engagement.per_person_cap,
        engaged_min=section.engagement.engaged_person_min,
        min_people=section.mqa.min_engaged_people, min_score=section.mqa.min_score,
        require_roles=section.mqa.require_roles,
        roles=tuple((role, tuple(_title_test(p) for p in patterns))
                    for role, patterns in section.buying_roles.items()))


def _title_test(pattern: str) -> TitleTest:
    """`/regex/` is searched as written; any other pattern matches as whole words, ignoring
    case ("cto" matches "CTO & co-founder", not "Director")."""
    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
        regex = re.compile(pattern[1:-1], re.IGNORECASE)
    else:
        words = r"\s+".join(re.escape(w) for w in pattern.split())
        regex = re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
    return lambda title: regex.search(title) is not None


def buying_role(title: object, plan: AccountPlan) -> str | None:
    """The first role (in the model's order) with a pattern the title matches."""
    if not isinstance(title, str) or not title.strip():
        return None
    for role, tests in plan.roles:
        if any(test(title) for test in tests):
            return role
    return None


def account_values(records: Sequence[Account], fields: Sequence[str]
                   ) -> dict[str, object | None]:
    """Each field's first non-empty value across the company's records (in precedence
    order); a standard field is the record's attribute, any other a mapped property."""
    values: dict[str, object | None] = {}
    for name in fields:
        values[name] = None
        for record in records:
            value = getattr(record, name) if name in ACCOUNT_FIELDS \
                else record.properties.get(name)
            if value is not None and value != "":
                values[name] = value
                break
    return values


class ScoresAccounts(Protocol):
    """What the account core reads of a model (qualify/model.py's Model), named here so
    that this module and the model do not import each other."""

    @property
    def account_plan(self) -> AccountPlan | None: ...

    @property
    def version(self) -> str: ...


def decide_account(key: str, records: Sequence[Account], members: Sequence[AccountMember],
                   model: ScoresAccounts) -> AccountDecision:
    """The company's decision: fit from its records, engagement from its people (each at
    most `per_person_cap`, never below zero), grade, MQA and the reasons for each."""
    plan = model.account_plan
    if plan is None:
        raise ValueError("the model has no `accounts:` section")
    fit, fit_reasons = fit_by(account_values(records, plan.fit_fields), plan.fit)
    people = sorted(members, key=lambda m: m.key)
    counted = [min(max(m.engagement, 0.0), plan.cap) for m in people]
    engagement = math.fsum(counted)
    reasons = [Reason(r.rule_id, r.points, f"fit: {r.detail} {r.points:+g}")
               for r in fit_reasons]
    reasons.append(Reason("accounts.engagement", engagement,
                          f"engagement {engagement:g} from {len(people)} "
                          f"{'person' if len(people) == 1 else 'people'} "
                          f"(at most {plan.cap:g} each)"))
    reasons += [Reason("accounts.engagement.cap", 0.0,
                       f"engagement capped at {plan.cap:g} for {m.key} (had {m.engagement:g})")
                for m in people if m.engagement > plan.cap]
    engaged = [m for m in people if m.engagement >= plan.engaged_min]
    reasons.append(Reason("accounts.engaged_people", 0.0, _engaged_text(engaged)))
    score = round(fit + engagement)
    is_mqa, verdict = _mqa(score, engaged, plan)
    reasons.append(Reason("accounts.mqa", 0.0, verdict))
    return AccountDecision(
        key=key, score=score, fit=fit, engagement=engagement,
        grade=grade_of(fit, plan.grades), is_mqa=is_mqa, engaged_people=len(engaged),
        reasons=tuple(reasons), model_version=model.version,
        name=next((r.name for r in records if r.name), None))


def _engaged_text(engaged: Sequence[AccountMember]) -> str:
    """"3 engaged people (a@x, b@x, c@x)", naming at most NAMED_PEOPLE."""
    count = len(engaged)
    noun = "person" if count == 1 else "people"
    if not engaged:
        return "0 engaged people"
    named = ", ".join(m.key for m in engaged[:NAMED_PEOPLE])
    more = f" and {count - NAMED_PEOPLE} more" if count > NAMED_PEOPLE else ""
    return f"{count} engaged {noun} ({named}{more})"


def _mqa(score: int, engaged: Sequence[AccountMember], plan: AccountPlan) -> tuple[bool, str]:
    """Whether the account is MQA, and the one line that says why (or what is missing)."""
    missing: list[str] = []
    if len(engaged) < plan.min_people:
        missing.append(f"{len(engaged)} engaged of {plan.min_people} needed")
    if score < plan.min_score:
        missing.append(f"score {score} below {plan.min_score:g}")
    roles = {m.role for m in engaged}
    missing += [f"no engaged {role}" for role in plan.require_roles if role not in roles]
    if missing:
        return False, "not MQA: " + "; ".join(missing)
    held = [f"{len(engaged)} engaged people >= {plan.min_people}",
            f"score {score} >= {plan.min_score:g}"]
    held += [f"engaged {role}" for role in plan.require_roles]
    return True, "MQA: " + ", ".join(held)


def account_summary(decision: AccountDecision, limit: int) -> str:
    """The reasons field of an account: "MQA 55 (grade A): MQA: 3 engaged people >= 3,
    score 55 >= 50; 3 engaged people (a@x, b@x, c@x); fit: industry 'Software' is listed
    +10; engagement 45 from 3 people (at most 30 each); ...", never longer than `limit`
    (cut between reasons, ending in "…")."""
    head = f"{'MQA' if decision.is_mqa else 'not MQA'} {decision.score} " \
           f"(grade {decision.grade})"
    first = ("accounts.mqa", "accounts.engaged_people")
    items = [r.detail for rule in first for r in decision.reasons if r.rule_id == rule]
    items += [r.detail for r in decision.reasons if r.rule_id not in first]
    text, separator = head, ": "
    for item in items:
        if len(text) + len(separator) + len(item) + len("; …") > limit:
            return (text + separator + "…")[:limit]
        text, separator = text + separator + item, "; "
    return text[:limit]


def member_roles(titles: Mapping[str, object], plan: AccountPlan) -> dict[str, str | None]:
    """Each person's buying role from their title (person key -> role or None)."""
    return {key: buying_role(title, plan) for key, title in titles.items()}
