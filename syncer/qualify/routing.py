"""Assigning an owner to a newly qualified person: account match, territories, rotation.

Pure: everything routing needs to know about the world (who is active in the CRMs, which
accounts reps already own, where each team's rotation stands, how many people each rep got
today) arrives as a `RoutingState` gathered by the pipeline, and what changed comes back in
the `Assignment`. The pipeline persists rotation positions, so replicas and restarts
continue the same rotation and a replay gives the same owners.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from fractions import Fraction
from functools import cache

from syncer.domain.types import Decision, Profile, Reason, Stage
from syncer.qualify.model import Model
from syncer.qualify.routing_model import Routing, Team, Territory


@dataclass(frozen=True)
class RoutingState:
    """What routing knows about the world at one instant.

    `available`: reps active in every CRM the person lives in (matched by email).
    `account_owners`: "domain:<domain>" / "company:<normalized name>" -> owning rep's email.
    `positions`: team name -> its rotation position. `assigned_today`: rep -> count today.
    `account_owner`: (owner email, account name) of the CRM account (HubSpot company,
    Salesforce Account) the person belongs to, when it has an owner: it comes before
    the index of accounts reps already own.
    """

    available: frozenset[str]
    account_owners: Mapping[str, str] = field(default_factory=dict)
    positions: Mapping[str, int] = field(default_factory=dict)
    assigned_today: Mapping[str, int] = field(default_factory=dict)
    account_owner: tuple[str, str] | None = None


@dataclass(frozen=True)
class Assignment:
    """The routed decision, which rule chose the owner, and the rotation move to persist."""

    decision: Decision
    rule: str
    team: str | None = None
    new_position: int | None = None

    @property
    def assigned(self) -> bool:
        return self.rule not in ("kept", "not_qualified", "unassigned")


def rotation(reps: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """One full cycle: each rep appears `weight` times, turns spread evenly.

    A rep's k-th turn sits at time (k + i/n) / weight of the cycle (i = the rep's place in
    the list, n = number of reps): turns of one rep are 1/weight apart, and reps are
    staggered so that equal weights do not bunch up. Ties go to the earlier rep. Exact
    fractions keep the order identical on every machine.
    """
    n = len(reps)
    turns = sorted((Fraction(k * n + i, weight * n), i)
                   for i, (_, weight) in enumerate(reps) for k in range(weight))
    return tuple(reps[i][0] for _, i in turns)


@cache
def _team_cycle(team: Team) -> tuple[str, ...]:
    return rotation([(rep.email, rep.weight) for rep in team.reps])


def company_key(name: str | None) -> str | None:
    """Company names compared without case, punctuation or legal suffixes."""
    if not name:
        return None
    words = "".join(c if c.isalnum() else " " for c in name.lower()).split()
    while words and words[-1] in {"inc", "llc", "ltd", "gmbh", "ag", "sa", "bv", "corp",
                                  "co", "plc", "limited", "corporation"}:
        words.pop()
    return " ".join(words) or None


def account_keys(person_key: str, company: str | None, routing: Routing) -> list[str]:
    """The keys under which a person's account may already be owned: their email domain
    (unless it is a personal mailbox domain) and their normalized company name."""
    keys: list[str] = []
    if "email_domain" in routing.account_match.by and "@" in person_key:
        domain = person_key.rpartition("@")[2]
        if domain and domain not in routing.account_match.ignore_domains:
            keys.append(f"domain:{domain}")
    if "company_name" in routing.account_match.by:
        normalized = company_key(company)
        if normalized:
            keys.append(f"company:{normalized}")
    return keys


def _text_in(value: object | None, options: tuple[str, ...]) -> bool:
    return value is not None and str(value).strip().lower() in {o.lower() for o in options}


def territory_matches(territory: Territory, profile: Profile, routing: Routing) -> bool:
    match = territory.match
    country = profile.first("country")
    if match.country is not None and not _text_in(country, match.country):
        return False
    if match.region is not None and not any(
            _text_in(country, routing.regions[region]) for region in match.region):
        return False
    if match.industry is not None and not _text_in(profile.first("industry"), match.industry):
        return False
    if match.employees is not None:
        employees = profile.first("employees")
        if not isinstance(employees, int):
            return False
        if match.employees.min is not None and employees < match.employees.min:
            return False
        if match.employees.max is not None and employees > match.employees.max:
            return False
    return True


class _Router:
    """One routing evaluation; small methods, one per rule of the order."""

    def __init__(self, decision: Decision, profile: Profile, routing: Routing,
                 state: RoutingState, today: date) -> None:
        self.decision = decision
        self.profile = profile
        self.routing = routing
        self.state = state
        self.today = today
        self.away = {o.email for o in routing.out_of_office if o.start <= today <= o.end}
        self.caps = {rep.email: rep.daily_cap for team in routing.all_teams
                     for rep in team.reps if rep.daily_cap is not None}

    def can_take(self, email: str, *, capped: bool) -> bool:
        if email not in self.state.available or email in self.away:
            return False
        cap = self.caps.get(email)
        return not capped or cap is None or self.state.assigned_today.get(email, 0) < cap

    def assign(self, owner: str, rule: str, detail: str, team: str | None = None,
               new_position: int | None = None) -> Assignment:
        reason = Reason(f"routing.{rule.split(':')[0]}", 0.0, detail)
        routed = replace(self.decision, owner_email=owner,
                         reasons=(*self.decision.reasons, reason))
        return Assignment(routed, rule, team, new_position)

    def unassigned(self, why: str) -> Assignment:
        if self.routing.fallback_owner is not None:
            return self.assign(self.routing.fallback_owner, "fallback",
                               f"{why}; fallback owner {self.routing.fallback_owner}")
        reason = Reason("routing.unassigned", 0.0, f"{why}; left unassigned")
        return Assignment(replace(self.decision, reasons=(*self.decision.reasons, reason)),
                          "unassigned")

    def by_account(self) -> Assignment | None:
        if not self.routing.account_match.enabled:
            return None
        if self.state.account_owner is not None:
            crm_owner, name = self.state.account_owner
            if self.can_take(crm_owner, capped=False):
                return self.assign(crm_owner, "account_match",
                                   f"account owner ({name}): {crm_owner}")
        company = self.profile.first("company")
        keys = account_keys(self.profile.key, str(company) if company else None, self.routing)
        for key in keys:
            owner = self.state.account_owners.get(key)
            if owner is not None and self.can_take(owner, capped=False):
                kind, _, value = key.partition(":")
                label = "domain" if kind == "domain" else "company"
                return self.assign(owner, "account_match",
                                   f"account match ({label} {value}): {owner}")
        return None

    def round_robin(self, team_name: str, prefix: str) -> Assignment:
        team = next(t for t in self.routing.all_teams if t.name == team_name)
        cycle = _team_cycle(team)
        position = self.state.positions.get(team_name, 0)
        for step in range(len(cycle)):
            slot = (position + step) % len(cycle)
            owner = cycle[slot]
            if self.can_take(owner, capped=True):
                return self.assign(owner, "round_robin",
                                   f"{prefix}round robin {slot + 1}/{len(cycle)}: {owner}",
                                   team_name, position + step + 1)
        why = f"{prefix}nobody in team {team_name} is available or under their daily cap"
        return self.unassigned(why)

    def by_territory(self) -> Assignment:
        for territory in self.routing.territories:
            if not territory_matches(territory, self.profile, self.routing):
                continue
            prefix = f"territory {territory.id}, "
            if territory.rep is not None:
                if self.can_take(territory.rep, capped=True):
                    return self.assign(territory.rep, f"territory:{territory.id}",
                                       f"territory {territory.id}: {territory.rep}")
                return self.unassigned(f"territory {territory.id}: {territory.rep} is not "
                                       "available")
            assert territory.team is not None
            return self.round_robin(territory.team, prefix)
        team = self.routing.fallback_team
        if team is None:
            return self.unassigned("no territory matched and no default_team")
        prefix = "no territory matched, " if self.routing.territories else ""
        return self.round_robin(team, prefix)


def assign_owner(decision: Decision, profile: Profile, routing: Routing,
                 state: RoutingState, today: date) -> Assignment:
    """Route one decision: keep an existing owner; otherwise, once the person reached
    `routing.assign_at`, account match, then territories, then the team's rotation."""
    if decision.owner_email is not None:
        return Assignment(decision, "kept")
    if decision.stage.rank < Stage(routing.assign_at).rank:
        return Assignment(decision, "not_qualified")
    router = _Router(decision, profile, routing, state, today)
    return router.by_account() or router.by_territory()


def route(decision: Decision, profile: Profile, model: Model,
          available_reps: Sequence[str], position: int) -> tuple[Decision, int]:
    """Single-rotation form of `assign_owner` for models with one team (`reps:`).

    Returns the routed decision and the team's next position; unchanged when nothing was
    assigned. Kept for callers that hold one position counter.
    """
    if position < 0:
        raise ValueError(f"routing position must be >= 0, got {position}")
    routing = model.routing
    teams = routing.all_teams
    team = teams[0].name if len(teams) == 1 else (routing.fallback_team or "")
    state = RoutingState(frozenset(e.strip().lower() for e in available_reps),
                         positions={team: position})
    assignment = assign_owner(decision, profile, routing, state, date.min)
    return assignment.decision, (assignment.new_position
                                 if assignment.new_position is not None else position)
