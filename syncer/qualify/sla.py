"""Speed-to-lead SLA: is a routed MQL being worked in time, and if not, what happens now.

Pure: the person's assignment history (rows of the `assignments` table, as `Mark`s), the
decision the core and routing just made, the profile and the time come in; a `Verdict`
comes out (keep, worked, reassign, queue, recycle, hold, requalified); those that change
the owner or the stage add a Reason a rep can read to the decision. The run stage
(syncer/run/sla.py) stores what it implies.

An *episode* is one stretch of ownership of one MQL: it starts with a routing assignment
(or `sla_requalified`), carries on through `sla_reassign` / `sla_queue` rows, and ends with
`sla_recycle`. The owners of an episode are never offered the person again in it.

What the pulled data shows of "worked" (connectors/*/mapping.py), and what it does not:
- seen: the stage a person set in either CRM (a rep moving a Lead Status or lifecycle
  stage that maps past MQL, e.g. SAL/SQL): the decision's stage is then past MQL;
- seen: a sales activity of a type in `worked_when.activities` on the person after the
  owner got them: Salesforce Tasks of Type Meeting, Call or Email, Events, Opportunities
  on the person's Contact (connectors/salesforce/sales_activity.py). They carry who logged
  them (the OwnerId and its email, `Activity.actor`): one logged by someone who is none of
  the episode's owners does not count (a colleague's call is not this owner working the
  MQL); one whose actor is unknown counts. HubSpot calls, meetings, emails, notes and
  tasks (engagements, with `hubspot_owner_id`) are pulled when the connector has
  `engagements: true` (connectors/hubspot/engagements.py); without it a rep working a
  HubSpot-only person by phone is seen through the lifecycle stage or `worked_when.field`;
- seen: a person field mapped by the connector's `person_fields` (e.g. Lead Status ->
  `lead_status`) holding one of `worked_when.values`;
- seen: an owner set in a CRM by a person, who is none of the owners syncer gave the
  person in this episode: a human decision, respected and never reassigned.

After an SLA recycle, only something the person does (not a rep's call: SALES_ACTIVITIES)
starts a new episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from syncer.domain.types import SALES_ACTIVITIES, Decision, Profile, Reason, Stage
from syncer.qualify.routing import Assignment, RoutingState, assign_owner
from syncer.qualify.routing_model import Routing
from syncer.qualify.sla_model import Sla, duration_text

#: assignments.rule values the SLA writes; any other rule starts an episode.
REASSIGN, QUEUE, RECYCLE, REQUALIFIED = "sla_reassign", "sla_queue", "sla_recycle", \
    "sla_requalified"
SLA_RULES = frozenset({REASSIGN, QUEUE, RECYCLE, REQUALIFIED})
#: The Reason rule id of an SLA recycle (a lifecycle recycle: the stage history calls it one)
RECYCLE_REASON = "lifecycle.recycle.sla"

Action = Literal["none", "keep", "worked", "reassign", "queue", "recycle", "hold",
                 "requalified"]


@dataclass(frozen=True)
class Mark:
    """One assignments row, as far as the SLA reads it."""

    owner: str
    rule: str
    team: str | None
    at: datetime


@dataclass(frozen=True)
class Episode:
    """The open episode of one person: who had them, since when, how often reassigned."""

    started_at: datetime
    team: str | None
    owners: tuple[str, ...]
    owner_since: datetime
    reassignments: int
    queued: bool

    @property
    def owner(self) -> str:
        return self.owners[-1]


def episode_of(marks: Sequence[Mark]) -> Episode | None:
    """The episode the last marks (in the order they were made) form; None when there is
    none or the last one was recycled."""
    start = None
    for index, mark in enumerate(marks):
        if mark.rule == RECYCLE:
            start = None
        elif mark.rule not in (REASSIGN, QUEUE) or start is None:
            start = index
    if start is None:
        return None
    tail = marks[start:]
    return Episode(tail[0].at, next((m.team for m in tail if m.team), None),
                   tuple(m.owner for m in tail), tail[-1].at,
                   sum(m.rule == REASSIGN for m in tail), any(m.rule == QUEUE for m in tail))


def recycled_at(marks: Sequence[Mark]) -> datetime | None:
    """When the SLA recycled the person, if that is the last thing it did to them."""
    return marks[-1].at if marks and marks[-1].rule == RECYCLE else None


@dataclass(frozen=True)
class Verdict:
    """What the SLA does with one person now. `decision` is the decision to write (owner
    or stage changed, Reason added); `owner`/`rule` the assignments row to add, if any;
    `routed` the routing move (rotation position) behind a reassignment."""

    action: Action
    decision: Decision
    rule: str | None = None
    owner: str | None = None
    team: str | None = None
    routed: Assignment | None = None
    breached_owner: str | None = None


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _worked(profile: Profile, episode: Episode, sla: Sla) -> str | None:
    """Why the person counts as worked in this episode, or None."""
    crm_owner = profile.owner_email
    if crm_owner is not None and crm_owner not in episode.owners:
        return (f"owner {crm_owner} set in the CRM after syncer assigned {episode.owner}; "
                "respected")
    wanted = sla.worked_when
    owners = {owner.lower() for owner in episode.owners}
    for activity in profile.activities:
        if activity.type in wanted.activities and activity.occurred_at >= episode.owner_since \
                and (activity.actor is None or activity.actor in owners):
            by = f" by {activity.actor}" if activity.actor else ""
            return f"{activity.type.value}{by} {_when(activity.occurred_at)}"
    if wanted.field is not None:
        values = {v.strip().lower() for v in wanted.values}
        for record in profile.records:
            value = record.properties.get(wanted.field)
            if value is not None and str(value).strip().lower() in values:
                return f"{wanted.field} is {value}"
    return None


def review(decision: Decision, profile: Profile, marks: Sequence[Mark], routing: Routing,
           state: RoutingState, now: datetime) -> Verdict:
    """The SLA's verdict on one decided (and routed) person at `now`; see the module
    docstring. `marks`: the person's assignments rows in order, this run's included;
    `state`: routing's view of who can take people now (caps, out of office)."""
    sla = routing.sla
    if sla is None:
        return Verdict("none", decision)
    since = recycled_at(marks)
    if since is not None:
        return _after_recycle(decision, profile, marks, since, sla)
    episode = episode_of(marks)
    if episode is None or decision.stage is not Stage.MQL:
        return Verdict("none", decision)
    worked = _worked(profile, episode, sla)
    if worked is not None:
        return Verdict("worked", decision)
    if sla.recycle_after is not None and now >= episode.started_at + sla.recycle_after:
        return _recycle(decision, episode, sla)
    within, most, queue = sla.terms(episode.owner, episode.team)
    if now < episode.owner_since + within or episode.queued:
        return Verdict("keep", _pending_owner(decision, episode))
    breach = (f"SLA: {episode.owner} did not work this MQL within {duration_text(within)} "
              f"(assigned {_when(episode.owner_since)})")
    if episode.reassignments < most:
        routed = _route_again(decision, profile, episode, routing, state, now)
        if routed is not None:
            owner = routed.decision.owner_email
            how = routed.decision.reasons[-1].detail
            text = (f"{breach}; reassigned to {owner} ({how}), reassignment "
                    f"{episode.reassignments + 1} of {most}")
            return Verdict("reassign", _with_owner(decision, owner, REASSIGN, text),
                           REASSIGN, owner, routed.team, routed, episode.owner)
        breach += "; nobody else in the routing can take it now"
    else:
        breach += f"; reassigned {episode.reassignments} of {most} times already"
    target = queue or routing.fallback_owner
    assert target is not None  # Routing validation requires one of them
    return Verdict("queue", _with_owner(decision, target, QUEUE, f"{breach}; to {target}"),
                   QUEUE, target, episode.team, None, episode.owner)


def _pending_owner(decision: Decision, episode: Episode) -> Decision:
    """The episode's owner while the CRM still shows an earlier one of it (the write of a
    reassignment has not landed yet, e.g. it failed and waits as a dead letter)."""
    if decision.owner_email == episode.owner:
        return decision
    if decision.owner_email is None or decision.owner_email in episode.owners:
        return replace(decision, owner_email=episode.owner)
    return decision


def _route_again(decision: Decision, profile: Profile, episode: Episode, routing: Routing,
                 state: RoutingState, now: datetime) -> Assignment | None:
    """Routing's choice among the owners this episode has not tried (caps and out of
    office apply as for any routing); None when only the fallback or nobody is left."""
    others = replace(state, available=state.available - set(episode.owners))
    unrouted = replace(decision, owner_email=None)
    routed = assign_owner(unrouted, profile, routing, others, now.date())
    if routed.rule in ("fallback", "unassigned", "kept", "not_qualified"):
        return None
    return routed


def _with_owner(decision: Decision, owner: str | None, rule: str, text: str) -> Decision:
    reason = Reason(f"routing.{rule}", 0.0, text)
    return replace(decision, owner_email=owner, reasons=(*decision.reasons, reason))


def _recycled(decision: Decision, episode: Episode, sla: Sla) -> Decision:
    """The decision back at `recycle_to`, with the same Reason at the recycle and at every
    run that holds the person there (so holding them writes nothing new)."""
    assert sla.recycle_after is not None
    target = Stage(sla.recycle_to)
    text = (f"MQL -> {target.value.upper()}: not worked within "
            f"{duration_text(sla.recycle_after)} of being routed ({_when(episode.started_at)},"
            f" owner {episode.owner}); back to nurture until they do something new")
    reasons = tuple(r for r in decision.reasons if r.rule_id != "lifecycle.never_backwards")
    return replace(decision, stage=target,
                   reasons=(*reasons, Reason(RECYCLE_REASON, 0.0, text, episode.started_at)))


def _recycle(decision: Decision, episode: Episode, sla: Sla) -> Verdict:
    return Verdict("recycle", _recycled(decision, episode, sla), RECYCLE, episode.owner,
                   episode.team, None, episode.owner)


def _after_recycle(decision: Decision, profile: Profile, marks: Sequence[Mark],
                   since: datetime, sla: Sla) -> Verdict:
    """A person the SLA recycled stays in nurture until they do something new; then, MQL
    again, a new episode starts with their owner."""
    if decision.stage is not Stage.MQL:
        return Verdict("none", decision)
    last = marks[-1]
    if any(a.occurred_at > since and a.type not in SALES_ACTIVITIES
           for a in profile.activities):
        owner = decision.owner_email or last.owner
        return Verdict("requalified", decision, REQUALIFIED, owner, last.team)
    episode = episode_of(marks[:-1])
    if episode is None or sla.recycle_after is None:  # the SLA changed since: let go
        return Verdict("none", decision)
    return Verdict("hold", _recycled(decision, episode, sla))
