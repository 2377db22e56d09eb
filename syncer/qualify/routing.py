"""Assigning an owner to a newly qualified person: weighted round robin.

The rotation is a pure function of (reps, weights, who is available, position): the
pipeline persists `position` and passes it back, so replicas and restarts continue the same
rotation and a replay gives the same owners. A rep with weight 2 gets two turns per cycle,
spread out rather than in a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction

from syncer.domain import Decision, Profile, Reason
from syncer.qualify.model import Model


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


def route(decision: Decision, profile: Profile, model: Model,
          available_reps: Sequence[str], position: int) -> tuple[Decision, int]:
    """Assign the next rep when the decision reached `routing.assign_at` without an owner.

    `available_reps` are the emails the pipeline knows are active in the CRMs; reps of the
    model not among them are skipped. Returns the decision (owner set, a 0-point
    "routing.round_robin" Reason added) and the next position; unchanged otherwise. When no
    model rep is available the decision gets a "routing.unassigned" Reason and the position
    does not move. `profile` is unused in v1 (kept for territory/account rules).
    """
    if position < 0:
        raise ValueError(f"routing position must be >= 0, got {position}")
    if decision.owner_email is not None or decision.stage.rank < model.plan.assign_at.rank:
        return decision, position
    available = {email.strip().lower() for email in available_reps}
    reps = [(rep.email, rep.weight) for rep in model.routing.reps if rep.email in available]
    if not reps:
        reason = Reason("routing.unassigned", 0.0,
                        "no rep in routing.reps is available; left unassigned")
        return replace(decision, reasons=(*decision.reasons, reason)), position
    cycle = rotation(reps)
    slot = position % len(cycle)
    owner = cycle[slot]
    reason = Reason("routing.round_robin", 0.0, f"round robin {slot + 1}/{len(cycle)}: {owner}")
    return replace(decision, owner_email=owner, reasons=(*decision.reasons, reason)), position + 1
