"""The `routing` section of the model: who gets a newly qualified person, and why.

Evaluated in order, first match wins, the way LeanData-style routers work:

1. manual owner: an owner a person already has (set by syncer earlier or by a human in
   the CRM) is never replaced;
2. account match: a person whose company (email domain or company name) already has
   records owned by an active rep goes to that rep;
3. territories: conditions on country, region, industry and company size, each naming a
   team or a single rep;
4. round robin inside the team: weighted, skipping reps who are inactive in the CRMs, out of
   office, or at their daily capacity; when nobody in the team can take it, the fallback.

The older flat form (`reps:` without `teams:`) still loads: it is one team named "default".
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from syncer.domain.identity import DEFAULT_IGNORED_DOMAINS
from syncer.qualify.sla_model import Sla

Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]



class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _lower(value: str) -> str:
    return value.strip().lower()


class Rep(_Spec):
    """A rep in a rotation. `weight` 2 = twice the turns; `daily_cap` bounds a day's share."""

    email: Email
    weight: int = Field(default=1, ge=1, le=100, strict=True)
    daily_cap: int | None = Field(default=None, ge=0, strict=True)

    @field_validator("email")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return _lower(value)


class Team(_Spec):
    name: Name
    reps: tuple[Rep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_reps(self) -> Team:
        _unique([r.email for r in self.reps], f"rep email in team {self.name}")
        return self


class SizeRange(_Spec):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> SizeRange:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}. Fix: swap them")
        return self


class TerritoryMatch(_Spec):
    """All given conditions must hold (AND); lists mean any of (OR). Text ignores case."""

    country: tuple[str, ...] | None = None
    region: tuple[str, ...] | None = None
    industry: tuple[str, ...] | None = None
    employees: SizeRange | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> TerritoryMatch:
        if not any((self.country, self.region, self.industry, self.employees)):
            raise ValueError("a territory needs at least one condition (country, region, "
                             "industry or employees)")
        return self


class Territory(_Spec):
    id: Name
    match: TerritoryMatch
    team: Name | None = None
    rep: Email | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Territory:
        if (self.team is None) == (self.rep is None):
            raise ValueError(f"territory {self.id}: name exactly one of `team` or `rep`")
        return self


class AccountMatch(_Spec):
    enabled: bool = True
    by: tuple[Literal["email_domain", "company_name"], ...] = ("email_domain", "company_name")
    ignore_domains: tuple[str, ...] = DEFAULT_IGNORED_DOMAINS


class OutOfOffice(_Spec):
    """A rep who takes no new people between `start` and `end` (inclusive dates, UTC)."""

    email: Email
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.end < self.start:
            raise ValueError(f"out_of_office for {self.email}: end is before start")
        return self


class Routing(_Spec):
    """The whole routing policy; see the module docstring for the order of evaluation."""

    assign_at: Literal["mql", "sql"] = "mql"
    account_match: AccountMatch = AccountMatch()
    regions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    territories: tuple[Territory, ...] = ()
    teams: tuple[Team, ...] = ()
    default_team: Name | None = None
    #: legacy flat list: one team named "default".
    reps: tuple[Rep, ...] = ()
    out_of_office: tuple[OutOfOffice, ...] = ()
    #: who gets a person when no rep can: an email, or none to leave them unassigned.
    fallback_owner: Email | None = None
    #: speed-to-lead SLA for routed MQLs (syncer/qualify/sla_model.py); none: no SLA
    sla: Sla | None = None

    @field_validator("fallback_owner")
    @classmethod
    def _normalize_fallback(cls, value: str | None) -> str | None:
        return _lower(value) if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> Routing:
        _unique([r.email for r in self.reps], "rep email")
        if self.reps and self.teams:
            raise ValueError("use either `reps` (one rotation) or `teams`, not both. Fix: "
                             "move the reps into a team")
        names = [t.name for t in self.all_teams]
        _unique(names, "team name")
        _unique([t.id for t in self.territories], "territory id")
        known = set(names)
        for territory in self.territories:
            if territory.team is not None and territory.team not in known:
                raise ValueError(f"territory {territory.id} names team {territory.team!r}, "
                                 f"which is not defined. Fix: add it under `teams` or use "
                                 f"one of: {', '.join(sorted(known)) or '(none defined)'}")
            for region in territory.match.region or ():
                if region not in self.regions:
                    raise ValueError(f"territory {territory.id} uses region {region!r}, which "
                                     "is not defined. Fix: add it under `regions`")
        if self.default_team is not None and self.default_team not in known:
            raise ValueError(f"default_team {self.default_team!r} is not a defined team")
        if self.sla is not None:
            _check_sla(self.sla, known, self.fallback_owner)
        return self

    @property
    def all_teams(self) -> tuple[Team, ...]:
        if self.reps:
            return (Team(name="default", reps=self.reps),)
        return self.teams

    @property
    def fallback_team(self) -> str | None:
        """The team for people no territory matched."""
        if self.default_team is not None:
            return self.default_team
        teams = self.all_teams
        return teams[0].name if len(teams) == 1 else None


def _check_sla(sla: Sla, teams: set[str], fallback_owner: str | None) -> None:
    for name in sla.teams:
        if name not in teams:
            raise ValueError(f"sla.teams names team {name!r}, which is not defined. Fix: "
                             f"use one of: {', '.join(sorted(teams)) or '(none defined)'}")
    if sla.then_queue is None and fallback_owner is None:
        raise ValueError("sla: after max_reassignments a person goes to a queue, but neither "
                         "sla.then_queue nor fallback_owner is set. Fix: set sla.then_queue "
                         "to the email of the queue's user")


def _unique(values: list[str], what: str) -> None:
    seen = sorted({v for v in values if values.count(v) > 1})
    if seen:
        raise ValueError(f"duplicate {what}: {', '.join(seen)}. Fix: make each one unique")
