"""The `accounts:` section of the model: scoring companies, not only people (issue 20).

An admin scores an account by who it is (`fit`: rules over the account's fields, the same
condition language as a person's fit) and by how much its people engage (`engagement`:
their engagement points added up, each person capped, so one hyperactive visitor cannot
carry a whole company), and marks it MQA (marketing-qualified account) once enough of its
people are engaged and its score is high enough (`mqa`). `buying_roles` names each
person's part in the buying group from their title. syncer/qualify/accounts.py runs it.

The section is optional: a model without it scores people only, and its version is the
same as before the section existed (unset optional sections are left out of the hash).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from syncer.qualify.conditions import Number, Spec
from syncer.qualify.schema import FitRule, GradeBand, falling, unique

#: The account attributes (syncer/domain/accounts.py `Account`) a rule reads by name;
#: any other lower-case name is one of the account's mapped `properties`.
ACCOUNT_FIELDS: tuple[str, ...] = ("name", "domain", "industry", "employees", "country",
                                   "annual_revenue")
#: Person attributes a rule in `accounts.fit` cannot mean: an account has none of them.
PERSON_ONLY_FIELDS: frozenset[str] = frozenset({"title", "email", "first_name", "last_name",
                                                "company"})
RoleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


class AccountFitRule(FitRule):
    """A fit rule over one account field (`name`, `domain`, `industry`, `employees`,
    `country`, `annual_revenue`, or a mapped account property)."""

    @field_validator("field")
    @classmethod
    def _account_field(cls, value: str) -> str:
        if value in PERSON_ONLY_FIELDS:
            raise ValueError(f"'{value}' is a person field; an account has none. Fix: use one "
                             f"of {', '.join(ACCOUNT_FIELDS)} (or a mapped account property), "
                             "or score it in the top-level `fit`")
        return value


class AccountFit(Spec):
    rules: tuple[AccountFitRule, ...] = ()
    grades: tuple[GradeBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> AccountFit:
        unique([r.id for r in self.rules], "accounts.fit rule id")
        unique([b.grade for b in self.grades], "accounts.fit grade")
        falling([b.min for b in self.grades], "accounts.fit grades", "bands")
        return self


class AccountEngagement(Spec):
    """The account's engagement: its people's engagement points (their Decision), each
    counted up to `per_person_cap`; a person with at least `engaged_person_min` points
    is an engaged person."""

    per_person_cap: Number = Field(gt=0)
    engaged_person_min: Number = Field(gt=0)


class Mqa(Spec):
    """An account is MQA when at least `min_engaged_people` of its people are engaged AND
    its score (account fit + capped engagement) reaches `min_score` AND, for each role in
    `require_roles`, at least one engaged person has that buying role."""

    min_engaged_people: int = Field(ge=1, strict=True)
    min_score: Number = 0.0
    require_roles: tuple[RoleName, ...] = ()


class Accounts(Spec):
    fit: AccountFit
    engagement: AccountEngagement
    mqa: Mqa
    #: role -> title patterns (text contained in the title, ignoring case; or /regex/);
    #: a person's role is the first role with a pattern their title matches
    buying_roles: dict[RoleName, tuple[Annotated[str, Field(min_length=1)], ...]] = \
        Field(default_factory=dict)

    @field_validator("buying_roles", mode="before")
    @classmethod
    def _patterns(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        for role, patterns in value.items():
            if isinstance(patterns, str):
                raise ValueError(f"buying role {role}: give a list of title patterns, e.g. "
                                 f"[{patterns}]. Fix: wrap it in [ ]")
            if not isinstance(patterns, list) or not patterns:
                raise ValueError(f"buying role {role} needs a list of title patterns. Fix: "
                                 "e.g. decision_maker: [vp, chief, head of, director]")
            for pattern in patterns:
                if isinstance(pattern, str) and _is_regex(pattern):
                    try:
                        re.compile(pattern[1:-1])
                    except re.error as exc:
                        raise ValueError(f"buying role {role}: {pattern} does not compile "
                                         f"({exc}). Fix: check brackets and escapes") from None
        return value

    @model_validator(mode="after")
    def _roles_known(self) -> Accounts:
        missing = [r for r in self.mqa.require_roles if r not in self.buying_roles]
        if missing:
            known = ", ".join(self.buying_roles) or "none defined"
            raise ValueError(f"accounts.mqa.require_roles names {', '.join(missing)}, which "
                             f"accounts.buying_roles does not define ({known}). Fix: add "
                             "the role with its title patterns, or remove it")
        return self


def _is_regex(pattern: str) -> bool:
    """`/.../` marks a title pattern as a regular expression."""
    return len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/")
