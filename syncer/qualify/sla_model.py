"""The `routing.sla` section of the model: speed-to-lead terms for the owners routing picks.

An MQL that syncer routed to an owner must be *worked* within `work_within`; if not, routing
picks another owner (at most `max_reassignments` times, never an owner already tried, with
the same caps and out-of-office as any routing), then hands the person to `then_queue`.
After `recycle_after` without being worked, the person goes back to nurture (`recycle_to`).
`teams` and `owners` override the terms per team or per rep (an owner's terms first, then
their team's, then the defaults).

Durations are calendar time ("30m", "4h", "2d"): business hours are not modelled, so a
4h SLA that starts on Friday at 17:00 breaches at 21:00. Say a longer `work_within` for
weekends if that matters; docs/routing.md explains the trade-off.

What counts as worked (see syncer/qualify/sla.py for what the pulled data carries):
- the person's stage moved past MQL (SAL, SQL, ...: a rep changed the CRM stage);
- an activity of a type in `worked_when.activities` (default: meeting, call, sales_email
  and the opportunity ones) after the owner got the person, logged by one of the episode's
  owners when the CRM says who logged it;
- a person field (`worked_when.field`, mapped with the connector's `person_fields`, e.g. a
  Lead Status) holding one of `worked_when.values`;
- the owner changed in the CRM by a person to someone syncer did not pick.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from syncer.domain.types import ActivityType
from syncer.qualify.schema import activity_type

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86_400}


def parse_duration(value: object) -> timedelta:
    """"30m", "4h", "1.5d" -> timedelta; ValueError naming the accepted forms otherwise."""
    if isinstance(value, timedelta):
        return value
    found = _DURATION.match(value) if isinstance(value, str) else None
    if found is None or float(found.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a duration. Fix: a positive number and a unit, "
                         "m (minutes), h (hours) or d (days), e.g. 30m, 4h or 2d")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


def duration_text(value: timedelta) -> str:
    """The shortest exact form: 90m -> "90m", 4h -> "4h", 2d -> "2d"."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds / 60:g}m"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlaTerms(_Spec):
    """Terms one team or one owner has instead of the defaults (unset: the default)."""

    work_within: Duration | None = None
    max_reassignments: int | None = Field(default=None, ge=0, le=20, strict=True)
    then_queue: Email | None = None


class WorkedWhen(_Spec):
    """What shows a rep worked a person, besides a stage past MQL or a new owner."""

    activities: tuple[ActivityType, ...] = (
        ActivityType.MEETING, ActivityType.CALL, ActivityType.SALES_EMAIL,
        ActivityType.OPPORTUNITY_CREATED, ActivityType.OPPORTUNITY_WON,
        ActivityType.OPPORTUNITY_LOST)
    field: str | None = Field(default=None, min_length=1, max_length=80)
    values: tuple[str, ...] = ()

    @field_validator("activities", mode="before")
    @classmethod
    def _types(cls, value: object) -> object:
        return [activity_type(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _field_and_values(self) -> WorkedWhen:
        if (self.field is None) != (not self.values):
            raise ValueError("`field` and `values` go together: the person field (as the "
                             "connector's person_fields name it, e.g. lead_status) and the "
                             "values that mean a rep is working the person. Fix: give both "
                             "or neither")
        return self


class Sla(_Spec):
    """Speed-to-lead SLA for routed MQLs; see the module docstring."""

    work_within: Duration
    max_reassignments: int = Field(default=1, ge=0, le=20, strict=True)
    #: who gets a person after `max_reassignments` (a shared queue user); default: the
    #: routing's fallback_owner
    then_queue: Email | None = None
    recycle_after: Duration | None = None
    recycle_to: Literal["recycled", "lead"] = "recycled"
    worked_when: WorkedWhen = WorkedWhen()
    teams: dict[str, SlaTerms] = Field(default_factory=dict)
    owners: dict[Email, SlaTerms] = Field(default_factory=dict)

    @field_validator("then_queue")
    @classmethod
    def _lower_queue(cls, value: str | None) -> str | None:
        return value.strip().lower() if value is not None else None

    @field_validator("owners")
    @classmethod
    def _lower_owners(cls, value: dict[str, SlaTerms]) -> dict[str, SlaTerms]:
        return {email.strip().lower(): terms for email, terms in value.items()}

    @model_validator(mode="after")
    def _recycle_after_breach(self) -> Sla:
        longest = max([self.work_within, *(t.work_within for t in
                                           (*self.teams.values(), *self.owners.values())
                                           if t.work_within is not None)])
        if self.recycle_after is not None and self.recycle_after <= longest:
            raise ValueError(f"recycle_after ({duration_text(self.recycle_after)}) must be "
                             f"longer than work_within ({duration_text(longest)}), or people "
                             "are recycled before anyone else could work them. Fix: raise "
                             "recycle_after or remove it")
        return self

    def terms(self, owner: str, team: str | None) -> tuple[timedelta, int, str | None]:
        """(work_within, max_reassignments, then_queue) for an owner in a team."""
        layers = [self.owners.get(owner), self.teams.get(team) if team else None]
        within = next((t.work_within for t in layers if t and t.work_within), None)
        most = next((t.max_reassignments for t in layers
                     if t and t.max_reassignments is not None), None)
        queue = next((t.then_queue for t in layers if t and t.then_queue), None)
        return (within or self.work_within,
                self.max_reassignments if most is None else most,
                (queue or self.then_queue or "").lower() or None)
